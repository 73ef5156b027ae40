using System.Text.Json;
using RaftKv.Retries;

namespace RaftKv.Client;

/// <summary>
/// A client for a RaftKv cluster (<c>raftkvd</c>'s HTTP API). Thread-safe: create one and share it.
/// </summary>
/// <remarks>
/// <para>
/// The client starts from <see cref="RaftKvClientOptions.Endpoints"/>, learns the leader from the cluster (the
/// <c>X-RaftKv-Leader</c> header a follower adds when it forwards, a 307 redirect, a "not the leader" answer, or
/// <c>/status</c>) and sends writes and leader reads there directly. Members learned from <c>/status</c> join the
/// endpoints it can fail over to.
/// </para>
/// <para>
/// Retries: reads, status and snapshot calls are retried after any transient failure. A write (set, delete, join,
/// remove, transfer) is retried only when it certainly did not reach the log: the connection was refused before the
/// request was sent, or the server answered 503 "no leader", "not the leader", "busy" or "not applied". When a write
/// may have been applied (504, a connection reset after the request was sent, a timeout while waiting for the answer, a
/// failed forward), the client does not retry and throws <see cref="RaftKvIndeterminateException"/>. Retries wait with
/// exponential back-off and jitter, and all of them fit in the call's timeout.
/// </para>
/// <para>
/// A missing key is not an error: <see cref="GetAsync"/> returns null. Cancelling a write's token while it is in flight
/// leaves its fate unknown, as an indeterminate failure would.
/// </para>
/// </remarks>
public sealed partial class RaftKvClient : IDisposable
{
    /// <summary>Response header carrying the log index of a write.</summary>
    public const string IndexHeader = "X-RaftKv-Index";

    /// <summary>Response header a follower adds to a forwarded answer: the leader's HTTP address.</summary>
    public const string LeaderHeader = "X-RaftKv-Leader";

    private readonly RaftKvClientOptions _options;
    private readonly ClusterView _view;
    private readonly HttpClient _http;
    private readonly Backoff _backoff;

    /// <summary>Creates a client. Nothing is contacted until the first call.</summary>
    /// <param name="options">Endpoints, timeouts, retries; null for the defaults (localhost:11000).</param>
    /// <exception cref="ArgumentException">An endpoint is not a host:port address, or a setting is out of range.</exception>
    public RaftKvClient(RaftKvClientOptions? options = null)
        : this(options ?? new RaftKvClientOptions(), handler: null)
    {
    }

    /// <summary>Creates a client for the given endpoints with default settings.</summary>
    /// <param name="endpoints">HTTP addresses of one or more members.</param>
    public RaftKvClient(params string[] endpoints)
        : this(new RaftKvClientOptions { Endpoints = endpoints })
    {
    }

    internal RaftKvClient(RaftKvClientOptions options, HttpMessageHandler? handler)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.Timeout <= TimeSpan.Zero)
        {
            throw new ArgumentException("Timeout must be positive", nameof(options));
        }
        if (options.MaxRetries < 0)
        {
            throw new ArgumentException("MaxRetries must not be negative", nameof(options));
        }
        _options = options;
        _view = new ClusterView(options.Endpoints);
        _backoff = new Backoff(options.InitialBackoff, options.MaxBackoff);
        _http = new HttpClient(handler ?? new SocketsHttpHandler
        {
            // Redirects are followed by the client itself, which learns the leader from them.
            AllowAutoRedirect = false,
            UseProxy = false,
            UseCookies = false,
            ConnectTimeout = options.ConnectTimeout,
            PooledConnectionIdleTimeout = TimeSpan.FromSeconds(30),
        })
        {
            // Each call carries its own deadline.
            Timeout = System.Threading.Timeout.InfiniteTimeSpan,
        };
    }

    /// <summary>The leader's HTTP address as last learned, or null when not known (yet, or since it failed).</summary>
    public string? Leader => _view.Leader;

    /// <summary>Every endpoint the client may use: those it was given, then members it learned.</summary>
    public IReadOnlyList<string> KnownEndpoints => _view.Endpoints;

    /// <summary>Reads one key.</summary>
    /// <param name="key">The key (any non-empty string).</param>
    /// <param name="level">How fresh the read must be; null for <see cref="RaftKvClientOptions.DefaultReadLevel"/>.</param>
    /// <param name="timeout">This call's time limit, retries included; null for <see cref="RaftKvClientOptions.Timeout"/>.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The value, or null when the key does not exist.</returns>
    /// <exception cref="RaftKvException">The read failed (see the derived types); retries were exhausted or did not apply.</exception>
    public async Task<string?> GetAsync(string key, ReadLevel? level = null, TimeSpan? timeout = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(key);
        var chosen = level ?? _options.DefaultReadLevel;
        var query = "?level=" + LevelName(chosen);
        if (_options.PreferRedirects && chosen != ReadLevel.None)
        {
            query += "&redirect=true";
        }
        var call = new Call(HttpMethod.Get, "/key/" + Uri.EscapeDataString(key) + query, null, CallKind.Read,
            NeedsLeader: chosen != ReadLevel.None, Endpoint: null, Description: "get " + key) { AcceptNotFound = true };
        var reply = await RunAsync(call, timeout, cancellationToken).ConfigureAwait(false);
        if (reply.Status == 404 && reply.ServerMessage?.StartsWith("key not found", StringComparison.Ordinal) == true)
        {
            return null;
        }
        if (reply.Status == 404)
        {
            throw Terminal(call, reply);
        }
        var pairs = Deserialize(reply, ClientJsonContext.Default.DictionaryStringString);
        return pairs.TryGetValue(key, out var value) ? value : pairs.Values.FirstOrDefault();
    }

    /// <summary>Sets one key.</summary>
    /// <param name="key">The key (any non-empty string).</param>
    /// <param name="value">The value.</param>
    /// <param name="timeout">This call's time limit, retries included; null for the default.</param>
    /// <param name="cancellationToken">Cancels the call (if the write was already sent, its fate is unknown).</param>
    /// <returns>The log index of the write.</returns>
    /// <exception cref="RaftKvIndeterminateException">The write may or may not have been applied.</exception>
    /// <exception cref="RaftKvException">The write was not applied (see the derived types).</exception>
    public Task<ulong> SetAsync(string key, string value, TimeSpan? timeout = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(key);
        ArgumentNullException.ThrowIfNull(value);
        return SetManyAsync([new(key, value)], timeout, cancellationToken);
    }

    /// <summary>Sets several keys in one atomic write: all of them are applied, or none.</summary>
    /// <param name="pairs">Keys and values; a key given twice takes the last value.</param>
    /// <param name="timeout">This call's time limit, retries included; null for the default.</param>
    /// <param name="cancellationToken">Cancels the call (if the write was already sent, its fate is unknown).</param>
    /// <returns>The log index of the write.</returns>
    /// <exception cref="RaftKvBadRequestException">No pairs, an empty or over-long key, or a body over the server's limit.</exception>
    /// <exception cref="RaftKvIndeterminateException">The write may or may not have been applied.</exception>
    /// <exception cref="RaftKvException">The write was not applied (see the derived types).</exception>
    public async Task<ulong> SetManyAsync(IEnumerable<KeyValuePair<string, string>> pairs, TimeSpan? timeout = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(pairs);
        var map = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (key, value) in pairs)
        {
            ArgumentNullException.ThrowIfNull(key, nameof(pairs));
            ArgumentNullException.ThrowIfNull(value, nameof(pairs));
            map[key] = value;
        }
        var body = JsonSerializer.SerializeToUtf8Bytes(map, ClientJsonContext.Default.DictionaryStringString);
        var description = map.Count == 1 ? "set " + map.Keys.First() : $"set {map.Count} keys";
        var reply = await RunAsync(WriteCall(HttpMethod.Post, "/key", body, description), timeout, cancellationToken).ConfigureAwait(false);
        return reply.Index;
    }

    /// <summary>Deletes one key. Deleting a missing key succeeds.</summary>
    /// <param name="key">The key.</param>
    /// <param name="timeout">This call's time limit, retries included; null for the default.</param>
    /// <param name="cancellationToken">Cancels the call (if the write was already sent, its fate is unknown).</param>
    /// <returns>The log index of the delete.</returns>
    /// <exception cref="RaftKvIndeterminateException">The delete may or may not have been applied.</exception>
    /// <exception cref="RaftKvException">The delete was not applied (see the derived types).</exception>
    public async Task<ulong> DeleteAsync(string key, TimeSpan? timeout = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(key);
        var reply = await RunAsync(WriteCall(HttpMethod.Delete, "/key/" + Uri.EscapeDataString(key), [], "delete " + key), timeout, cancellationToken)
            .ConfigureAwait(false);
        return reply.Index;
    }

    /// <summary>Adds a node to the cluster (or updates its addresses). Joining again with the same id is harmless.</summary>
    /// <param name="id">The new node's id.</param>
    /// <param name="raftAddress">Its raft address (host:port).</param>
    /// <param name="httpAddress">Its HTTP address, so others can forward to it; null if it has none.</param>
    /// <param name="voter">True for a voter, false for a non-voter that receives the log but never votes.</param>
    /// <param name="timeout">This call's time limit, retries included; null for the default.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <exception cref="RaftKvIndeterminateException">The change may or may not have been made.</exception>
    /// <exception cref="RaftKvException">The change was not made (see the derived types).</exception>
    public async Task JoinAsync(string id, string raftAddress, string? httpAddress = null, bool voter = true,
        TimeSpan? timeout = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(id);
        ArgumentException.ThrowIfNullOrEmpty(raftAddress);
        var body = JsonSerializer.SerializeToUtf8Bytes(
            new JoinBody { Id = id, Addr = raftAddress, HttpAddr = httpAddress, Voter = voter }, ClientJsonContext.Default.JoinBody);
        await RunAsync(WriteCall(HttpMethod.Post, "/join", body, "join " + id), timeout, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Removes a node from the cluster.</summary>
    /// <param name="id">The node's id.</param>
    /// <param name="timeout">This call's time limit, retries included; null for the default.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <exception cref="RaftKvNotFoundException">No member has that id.</exception>
    /// <exception cref="RaftKvIndeterminateException">The change may or may not have been made.</exception>
    /// <exception cref="RaftKvException">The change was not made (see the derived types).</exception>
    public async Task RemoveAsync(string id, TimeSpan? timeout = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(id);
        var body = JsonSerializer.SerializeToUtf8Bytes(new IdBody { Id = id }, ClientJsonContext.Default.IdBody);
        await RunAsync(WriteCall(HttpMethod.Delete, "/raft/remove", body, "remove " + id), timeout, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Hands leadership to another voter and waits until it leads.</summary>
    /// <param name="id">The voter to lead next, or null for the most up-to-date one.</param>
    /// <param name="timeout">This call's time limit, retries included; null for the default.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <exception cref="RaftKvIndeterminateException">The transfer may or may not have happened.</exception>
    /// <exception cref="RaftKvException">The transfer did not happen (see the derived types).</exception>
    public async Task TransferLeadershipAsync(string? id = null, TimeSpan? timeout = null, CancellationToken cancellationToken = default)
    {
        var body = JsonSerializer.SerializeToUtf8Bytes(new IdBody { Id = id }, ClientJsonContext.Default.IdBody);
        var reply = await RunAsync(WriteCall(HttpMethod.Post, "/raft/transfer-leadership", body, "transfer leadership"), timeout, cancellationToken)
            .ConfigureAwait(false);
        // Whoever answered led before the transfer; the next request must find the new leader.
        _view.ForgetLeader(reply.Endpoint);
        if (_view.Leader is { } stale)
        {
            _view.ForgetLeader(stale);
        }
    }

    /// <summary>Takes a snapshot on one node now and compacts its log.</summary>
    /// <param name="endpoint">The node's HTTP address, or null for the first endpoint that answers.</param>
    /// <param name="timeout">This call's time limit, retries included; null for the default.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The log index the snapshot covers.</returns>
    public async Task<ulong> SnapshotAsync(string? endpoint = null, TimeSpan? timeout = null, CancellationToken cancellationToken = default)
    {
        var call = new Call(HttpMethod.Post, "/raft/snapshot", [], CallKind.Local, false, Pin(endpoint), "snapshot");
        var reply = await RunAsync(call, timeout, cancellationToken).ConfigureAwait(false);
        return Deserialize(reply, ClientJsonContext.Default.SnapshotBody).Index;
    }

    /// <summary>One node's view of itself and the cluster (<c>GET /status</c>). Also teaches the client the leader and the members.</summary>
    /// <param name="endpoint">The node's HTTP address, or null for the first endpoint that answers.</param>
    /// <param name="timeout">This call's time limit, retries included; null for the default.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The node's status.</returns>
    public Task<RaftKvNodeStatus> GetStatusAsync(string? endpoint = null, TimeSpan? timeout = null, CancellationToken cancellationToken = default) =>
        StatusAsync(endpoint, timeout, retries: -1, cancellationToken);

    /// <summary>
    /// Every member of the cluster with its own status: the member list comes from the first endpoint that answers,
    /// then each member's <c>/status</c> is asked at once (one attempt each, so a dead member shows up as an error
    /// quickly instead of holding the rest).
    /// </summary>
    /// <param name="timeout">This call's time limit; null for the default.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>One entry per member, leader first, then by id.</returns>
    public async Task<IReadOnlyList<RaftKvMemberStatus>> GetClusterStatusAsync(TimeSpan? timeout = null, CancellationToken cancellationToken = default)
    {
        var budget = timeout ?? _options.Timeout;
        var started = Environment.TickCount64;
        var first = await GetStatusAsync(null, budget, cancellationToken).ConfigureAwait(false);
        var members = new List<RaftKvMember>();
        if (first.Leader is { } leader)
        {
            members.Add(leader);
        }
        members.AddRange(first.Followers);
        if (!members.Any(m => m.Id == first.Id))
        {
            members.Add(new RaftKvMember { Id = first.Id, RaftAddress = first.RaftAddress, HttpAddress = first.HttpAddress });
        }
        var remaining = budget - TimeSpan.FromMilliseconds(Environment.TickCount64 - started);
        if (remaining < TimeSpan.FromMilliseconds(500))
        {
            remaining = TimeSpan.FromMilliseconds(500);
        }
        var results = await Task.WhenAll(members.Select(async m =>
        {
            if (m.Id == first.Id)
            {
                return new RaftKvMemberStatus(m.Id, m.RaftAddress, m.HttpAddress, first, null);
            }
            if (string.IsNullOrEmpty(m.HttpAddress))
            {
                return new RaftKvMemberStatus(m.Id, m.RaftAddress, m.HttpAddress, null, "no HTTP address known");
            }
            try
            {
                var status = await StatusAsync(m.HttpAddress, remaining, retries: 0, cancellationToken).ConfigureAwait(false);
                return new RaftKvMemberStatus(m.Id, m.RaftAddress, m.HttpAddress, status, null);
            }
            catch (RaftKvException e)
            {
                return new RaftKvMemberStatus(m.Id, m.RaftAddress, m.HttpAddress, null, e.Message);
            }
        })).ConfigureAwait(false);
        return results
            .OrderByDescending(r => r.Status?.IsLeader == true || r.Id == first.Leader?.Id)
            .ThenBy(r => r.Id, StringComparer.Ordinal)
            .ToList();
    }

    /// <inheritdoc/>
    public void Dispose() => _http.Dispose();

    private async Task<RaftKvNodeStatus> StatusAsync(string? endpoint, TimeSpan? timeout, int retries, CancellationToken cancellationToken)
    {
        var call = new Call(HttpMethod.Get, "/status", null, CallKind.Local, false, Pin(endpoint), "status") { MaxRetriesOverride = retries };
        var reply = await RunAsync(call, timeout, cancellationToken).ConfigureAwait(false);
        var status = Deserialize(reply, ClientJsonContext.Default.RaftKvNodeStatus);
        if (status.Leader is { HttpAddress.Length: > 0 } leader)
        {
            _view.LearnLeader(leader.HttpAddress);
        }
        foreach (var follower in status.Followers)
        {
            _view.LearnMember(follower.HttpAddress);
        }
        return status;
    }

    private Call WriteCall(HttpMethod method, string path, byte[] body, string description) =>
        new(method, _options.PreferRedirects ? path + "?redirect=true" : path, body, CallKind.Write, NeedsLeader: true, Endpoint: null, description);

    private static string? Pin(string? endpoint) => endpoint is null ? null : ClusterView.Normalize(endpoint);

    internal static string LevelName(ReadLevel level) => level switch
    {
        ReadLevel.None => "none",
        ReadLevel.Weak => "weak",
        ReadLevel.Linearizable => "linearizable",
        ReadLevel.Strong => "strong",
        _ => throw new ArgumentOutOfRangeException(nameof(level), level, "unknown read level"),
    };

    private static T Deserialize<T>(Reply reply, System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> type)
    {
        try
        {
            return JsonSerializer.Deserialize(reply.Body, type)
                ?? throw new RaftKvException($"{reply.Endpoint} answered null", reply.Status, null, reply.Endpoint);
        }
        catch (JsonException e)
        {
            throw new RaftKvException($"{reply.Endpoint} answered something that is not the expected JSON: {e.Message}",
                reply.Status, null, reply.Endpoint, e);
        }
    }
}
