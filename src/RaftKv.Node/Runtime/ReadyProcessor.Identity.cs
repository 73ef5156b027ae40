using Microsoft.Extensions.Logging;
using RaftKv.Raft;

namespace RaftKv.Node.Runtime;

// Identities at the edges: what the loop says when a member's previous life is heard from, and how a leader gives a
// cluster founded before identities existed its cluster id and its members' incarnations.
internal sealed partial class ReadyProcessor
{
    // Stale-incarnation drops, logged at most once a minute per sender (TimeProvider timestamps).
    private readonly Dictionary<string, long> _staleLogged = new(StringComparer.Ordinal);

    /// <summary>Says that a member's previous life was heard from, and what to do about it (at most once a minute per sender).</summary>
    private void LogStaleIncarnation(Message m)
    {
        var now = _time.GetTimestamp();
        if (_staleLogged.TryGetValue(m.From, out var last) && _time.GetElapsedTime(last, now) < TimeSpan.FromMinutes(1)) return;
        _staleLogged[m.From] = now;
        var recorded = _core.Config.Find(m.From)?.Incarnation ?? 0;
        _log.LogWarning(
            "Ignoring answers from {Peer}: it is incarnation {Theirs}, the configuration has incarnation {Ours}, so it lost the data it acknowledged and must not count as that member. " +
            "It is let in once it rejoins (raftkvd started with -join does so by itself; else POST /join its id and addresses); to drop it instead, remove it",
            m.From, Incarnations.Format(m.FromIncarnation), Incarnations.Format(recorded));
    }

    /// <summary>
    /// On the leader, one step at a time: a configuration without a cluster id (written by an older RaftKv) gets one,
    /// then each member whose incarnation is not recorded gets the one its messages announce (this leader's own
    /// included). Until then those checks are off for that cluster or member: the upgrade trusts whoever answers first.
    /// </summary>
    private void RecordIdentities()
    {
        if (_core.Role != Role.Leader || _core.ConfigChangePending) return;
        var config = _core.Config;
        ConfigChange? change = null;
        if (config.ClusterId.Length == 0)
        {
            change = new ConfigChange(ConfigChangeType.AssignClusterId, _options.Id, ClusterId: Incarnations.NewClusterId());
        }
        else
        {
            foreach (var m in config.Members)
            {
                if (m.Incarnation != 0) continue;
                var seen = m.Id == _options.Id ? _options.Incarnation : _core.ObservedIncarnation(m.Id);
                if (seen == 0) continue;
                change = new ConfigChange(m.IsVoter ? ConfigChangeType.AddVoter : ConfigChangeType.AddNonVoter, m.Id, m.Address, seen);
                break;
            }
        }
        if (change is not { } c) return;
        // Refused while a new leader has not committed in its term: tried again at the next tick.
        if (!_core.ProposeConfigChange(c).Accepted) return;
        if (c.Type == ConfigChangeType.AssignClusterId)
            _log.LogInformation("this cluster was founded before cluster identities; it is now cluster {ClusterId}", c.ClusterId);
        else
            _log.LogInformation("recorded incarnation {Incarnation} for {Id}", Incarnations.Format(c.Incarnation), c.NodeId);
    }
}
