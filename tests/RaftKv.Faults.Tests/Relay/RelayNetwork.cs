using System.Collections.Concurrent;

namespace RaftKv.Faults.Tests.Relay;

/// <summary>
/// The raft network between the nodes under test: one <see cref="RaftLinkRelay"/> in front of each node's raft port,
/// and a rule per direction (caller, callee). Each node dials its own connection to each peer and sends its messages
/// there, so a rule on (a, b) governs what a says to b; a one-way partition is a rule on one direction only.
/// </summary>
public sealed class RelayNetwork : IDisposable
{
    private readonly ConcurrentDictionary<(string From, string To), LinkRule> _rules = new();
    private readonly ConcurrentDictionary<RelayedConnection, byte> _connections = new();
    private readonly Dictionary<string, RaftLinkRelay> _relays = [];

    /// <summary>Puts a relay in front of node <paramref name="name"/>'s real raft port; returns the port to advertise.</summary>
    public int AddRelay(string name, int realRaftPort)
    {
        var relay = new RaftLinkRelay(name, realRaftPort, this);
        _relays[name] = relay;
        return relay.Port;
    }

    /// <summary>Points node <paramref name="name"/>'s relay at a new real port (the node came back on another).</summary>
    public void Retarget(string name, int realRaftPort) => _relays[name].TargetPort = realRaftPort;

    public LinkRule Rule(string from, string to) => _rules.GetValueOrDefault((from, to), LinkRule.Pass);

    /// <summary>Sets the rule for what <paramref name="from"/> sends to <paramref name="to"/>, and applies it to live connections.</summary>
    public void Set(string from, string to, LinkRule rule)
    {
        if (rule == LinkRule.Pass) _rules.TryRemove((from, to), out _);
        else _rules[(from, to)] = rule;
        Enforce();
    }

    /// <summary>Every link passes again.</summary>
    public void HealAll()
    {
        _rules.Clear();
        Enforce();
    }

    /// <summary>The rules in force, for the history file.</summary>
    public string Describe() =>
        _rules.IsEmpty ? "all links pass" : string.Join(", ", _rules.OrderBy(r => r.Key.From).ThenBy(r => r.Key.To).Select(r => $"{r.Key.From}->{r.Key.To} {r.Value}"));

    /// <summary>Counts of bytes forwarded and dropped, over every relay (the tests check that faults bit).</summary>
    public long BytesForwarded => _relays.Values.Sum(r => r.BytesForwarded);

    public long BytesDropped => _relays.Values.Sum(r => r.BytesDropped);

    /// <summary>Connections closed or refused because their link was cut.</summary>
    public long ConnectionsCut => Interlocked.Read(ref _cut);

    private long _cut;

    internal void CountCut() => Interlocked.Increment(ref _cut);

    internal void Register(RelayedConnection c) => _connections[c] = 0;

    internal void Unregister(RelayedConnection c) => _connections.TryRemove(c, out _);

    // A cut link loses its connections now; a dropping link that heals loses the connections it dropped bytes from.
    private void Enforce()
    {
        foreach (var c in _connections.Keys)
        {
            var rule = Rule(c.From, c.To);
            if (rule == LinkRule.Cut || (rule == LinkRule.Pass && c.LostBytes))
            {
                if (rule == LinkRule.Cut) CountCut();
                c.Close();
            }
        }
    }

    public void Dispose()
    {
        foreach (var r in _relays.Values) r.Dispose();
        foreach (var c in _connections.Keys) c.Close();
    }
}
