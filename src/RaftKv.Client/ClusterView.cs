namespace RaftKv.Client;

/// <summary>
/// What the client knows of the cluster: the endpoints it may talk to (the ones it was given, then members it learned),
/// the leader's HTTP address if known, and which endpoints failed recently, so attempts go where they can succeed.
/// Thread-safe; one per client.
/// </summary>
internal sealed class ClusterView
{
    /// <summary>An endpoint that refused a connection is passed over for this long while others remain.</summary>
    private static readonly TimeSpan FailureMemory = TimeSpan.FromSeconds(2);

    private readonly Lock _lock = new();
    private readonly List<string> _endpoints = [];
    private readonly Dictionary<string, long> _failedAt = new(StringComparer.OrdinalIgnoreCase);
    private string? _leader;
    private int _home;

    public ClusterView(IEnumerable<string> seeds)
    {
        foreach (var seed in seeds)
        {
            Add(Normalize(seed));
        }
        if (_endpoints.Count == 0)
        {
            throw new ArgumentException("at least one endpoint is required", nameof(seeds));
        }
    }

    /// <summary>The leader's HTTP address as last learned, or null.</summary>
    public string? Leader
    {
        get { lock (_lock) return _leader; }
    }

    /// <summary>Every endpoint known, seeds first.</summary>
    public IReadOnlyList<string> Endpoints
    {
        get { lock (_lock) return _endpoints.ToArray(); }
    }

    /// <summary>
    /// <c>host:port</c> from <c>host:port</c>, <c>:port</c> (localhost, as raftkvd's -join reads it) or <c>http://host:port[/]</c>.
    /// </summary>
    public static string Normalize(string endpoint)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(endpoint);
        var text = endpoint.Trim();
        if (text.StartsWith("http://", StringComparison.OrdinalIgnoreCase))
        {
            text = text["http://".Length..];
        }
        else if (text.Contains("://", StringComparison.Ordinal))
        {
            throw new ArgumentException($"endpoint \"{endpoint}\": only http:// is supported", nameof(endpoint));
        }
        text = text.TrimEnd('/');
        if (text.StartsWith(':'))
        {
            text = "localhost" + text;
        }
        var colon = text.LastIndexOf(':');
        if (colon <= 0 || !ushort.TryParse(text.AsSpan(colon + 1), out var port) || port == 0 || text.Contains('/'))
        {
            throw new ArgumentException($"endpoint \"{endpoint}\" is not a host:port address", nameof(endpoint));
        }
        return text;
    }

    /// <summary>Where to send the next attempt: the leader when wanted and known and not just failed, else the home endpoint.</summary>
    public string Choose(bool wantLeader)
    {
        lock (_lock)
        {
            var now = Environment.TickCount64;
            if (wantLeader && _leader is not null && !RecentlyFailed(_leader, now))
            {
                return _leader;
            }
            // The home endpoint unless it failed recently; then the next one that did not. If all did, any will do:
            // the back-off between attempts is what paces a cluster that is wholly down.
            for (var i = 0; i < _endpoints.Count; i++)
            {
                var candidate = _endpoints[(_home + i) % _endpoints.Count];
                if (!RecentlyFailed(candidate, now))
                {
                    _home = (_home + i) % _endpoints.Count;
                    return candidate;
                }
            }
            _home = (_home + 1) % _endpoints.Count;
            return _endpoints[_home];
        }
    }

    /// <summary>A node said (or showed, by answering a write itself) that <paramref name="address"/> leads.</summary>
    public void LearnLeader(string address)
    {
        string normalized;
        try
        {
            normalized = Normalize(address);
        }
        catch (ArgumentException)
        {
            return; // A header we cannot use is no reason to fail a call that succeeded.
        }
        lock (_lock)
        {
            Add(normalized);
            _leader = normalized;
            _failedAt.Remove(normalized);
        }
    }

    /// <summary>Adds a member's HTTP address learned from <c>/status</c>, so the client can fail over to it.</summary>
    public void LearnMember(string address)
    {
        if (string.IsNullOrWhiteSpace(address))
        {
            return;
        }
        try
        {
            var normalized = Normalize(address);
            lock (_lock) Add(normalized);
        }
        catch (ArgumentException)
        {
        }
    }

    /// <summary><paramref name="address"/> no longer leads (it said so, or leadership changed under a write).</summary>
    public void ForgetLeader(string address)
    {
        lock (_lock)
        {
            if (string.Equals(_leader, address, StringComparison.OrdinalIgnoreCase))
            {
                _leader = null;
            }
        }
    }

    /// <summary>Could not talk to <paramref name="address"/>: pass it over for a while, and stop thinking it leads.</summary>
    public void MarkFailed(string address)
    {
        lock (_lock)
        {
            _failedAt[address] = Environment.TickCount64;
            if (string.Equals(_leader, address, StringComparison.OrdinalIgnoreCase))
            {
                _leader = null;
            }
        }
    }

    /// <summary><paramref name="address"/> answered.</summary>
    public void MarkHealthy(string address)
    {
        lock (_lock) _failedAt.Remove(address);
    }

    private bool RecentlyFailed(string address, long now) =>
        _failedAt.TryGetValue(address, out var at) && now - at < (long)FailureMemory.TotalMilliseconds;

    private void Add(string address)
    {
        if (!_endpoints.Contains(address, StringComparer.OrdinalIgnoreCase))
        {
            _endpoints.Add(address);
        }
    }
}
