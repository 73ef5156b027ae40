using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using RaftKv.Node.Routing;
using RaftKv.Node.Runtime;
using RaftKv.Node.StateMachine;
using RaftKv.Node.Transport;
using RaftKv.Raft;
using RaftKv.Storage;
using RaftKv.Storage.Snapshots;

namespace RaftKv.Node;

/// <summary>
/// A RaftKv node: storage, transport, the raft loop and the key-value map, behind <see cref="IKvNode"/>.
/// A program can host it without HTTP (the embedded use), or under the raftkvd server.
/// </summary>
/// <remarks>
/// Every call that needs the leader goes through one <see cref="LeaderRouter"/>, which serves it here or forwards it
/// (over the raft transport by default; raftkvd plugs in HTTP) and enforces the request timeout once.
/// </remarks>
public sealed class KvNode : IKvNode, IRoutedNode
{
    private readonly NodeOptions _options;
    private readonly RaftLoop _loop;
    private readonly IRaftTransport _transport;
    private readonly IDisposable _storage;
    private readonly string? _temporaryDirectory;
    private readonly ILogger _log;
    private readonly LeaderRouter _router;
    private readonly RedirectingNode _redirecting;
    private int _disposed;
    private (string Id, ulong Incarnation) _lastReplacementLogged;

    private KvNode(NodeOptions options, RaftLoop loop, IRaftTransport transport, IDisposable storage, string? temporaryDirectory, ILogger log)
    {
        _options = options;
        _loop = loop;
        _transport = transport;
        _storage = storage;
        _temporaryDirectory = temporaryDirectory;
        _log = log;
        _router = new LeaderRouter(() => _loop.Leader, options.RequestTimeout, TimeProvider.System)
        {
            Forwarder = options.ForwardToLeader ? new TransportForwarder(transport) : null,
        };
        _redirecting = new RedirectingNode(this);
    }

    /// <inheritdoc />
    public string Id => _options.Id;

    /// <inheritdoc />
    public Task<string> Failed => _loop.Failed;

    /// <summary>The raft loop, for tests that look inside it.</summary>
    internal RaftLoop Loop => _loop;

    /// <summary>The raft transport, for tests that look inside it.</summary>
    internal IRaftTransport Transport => _transport;

    /// <summary>Opens storage, starts the transport and the raft loop. Bootstraps a one-node cluster when asked and the storage is empty.</summary>
    /// <exception cref="ArgumentException">An option breaks a rule of <see cref="NodeOptions.Validate"/>; nothing was opened.</exception>
    public static Task<KvNode> StartAsync(NodeOptions options, ILoggerFactory? loggerFactory = null, CancellationToken cancellationToken = default) =>
        StartAsync(options, loggerFactory, log => TransportFactory.CreateTcp(options, log), cancellationToken);

    /// <summary>
    /// As <see cref="StartAsync(NodeOptions, ILoggerFactory?, CancellationToken)"/>, over a transport of the caller's
    /// (<see cref="IRaftTransport"/>: an in-process network for tests, another wire) instead of TCP. The node owns it
    /// from then on and disposes of it; <see cref="NodeOptions.Transport"/> still bounds the largest write.
    /// </summary>
    /// <param name="options">What the node needs to start.</param>
    /// <param name="loggerFactory">Where the node logs (nowhere if null).</param>
    /// <param name="createTransport">Makes the transport, given the node's logger; called once, after storage is open.</param>
    /// <param name="cancellationToken">Gives up starting.</param>
    /// <exception cref="ArgumentException">An option breaks a rule of <see cref="NodeOptions.Validate"/>; nothing was opened.</exception>
    public static async Task<KvNode> StartAsync(NodeOptions options, ILoggerFactory? loggerFactory, Func<ILogger, IRaftTransport> createTransport,
        CancellationToken cancellationToken)
    {
        options.Validate();
        var log = (loggerFactory ?? NullLoggerFactory.Instance).CreateLogger("RaftKv.Node." + options.Id);
        IRaftLogStorage storage;
        SnapshotStore snapshots;
        SnapshotInfo? restoreFrom;
        IDisposable owner;
        ulong incarnation;
        string? temporary = null;
        if (options.InMemory)
        {
            // hraftd's -inmem: the log lives in memory; snapshots still need files to stream, kept in a private temp folder.
            storage = new MemoryStorage();
            temporary = Path.Combine(Path.GetTempPath(), "raftkv-inmem-" + Guid.NewGuid().ToString("N"));
            snapshots = SnapshotStore.Open(temporary, options.SnapshotsRetained);
            restoreFrom = null;
            owner = storage;
            incarnation = Incarnations.New(); // nothing survives a restart, so every start is a new incarnation
        }
        else
        {
            var opened = NodeStorage.Open(options.DataDirectory, new StorageOptions { SnapshotsRetained = options.SnapshotsRetained },
                warning => log.LogWarning("{Warning}", warning));
            storage = opened.Log;
            snapshots = opened.Snapshots;
            restoreFrom = opened.RestoreFrom;
            owner = opened;
            incarnation = opened.Incarnation;
        }
        IRaftTransport? transport = null;
        RaftLoop? loop = null;
        try
        {
            if (options.Bootstrap && storage.LastIndex == 0 && storage.HardState.IsEmpty && storage.Snapshot.IsEmpty)
            {
                var self = new Member(options.Id, options.RaftAddress, true, incarnation) { HttpAddress = options.HttpAdvertiseAddress };
                var config = new ClusterConfig([self], Incarnations.NewClusterId());
                RaftCore.Bootstrap(storage, config);
                log.LogInformation("bootstrapped a new cluster {ClusterId} with {Id} as its only voter", config.ClusterId, options.Id);
            }
            transport = createTransport(log);
            loop = new RaftLoop(options, log, storage, snapshots, restoreFrom, transport, incarnation);
            var receiver = loop;
            await transport.StartAsync(receiver.Receive, async (m, stream, ct) =>
            {
                // Stored (temp file, fsync, rename) before the core hears of it: installing it must never find it missing.
                // Checked on the way: one the state machine could not restore is refused, never stored.
                await snapshots.ReceiveAsync(m.Snapshot!, new KvSnapshotCheck(stream), ct).ConfigureAwait(false);
                receiver.Receive(m);
            }, cancellationToken).ConfigureAwait(false);
            var node = new KvNode(options, loop, transport, owner, temporary, log);
            transport.SetCallHandler(node.AnswerForwardedAsync);
            loop.Start();
            // Serve nothing (not even level-none reads) before the committed log is re-applied.
            await loop.Recovered.WaitAsync(cancellationToken).ConfigureAwait(false);
            return node;
        }
        catch
        {
            loop?.Dispose();
            if (transport is not null) await transport.DisposeAsync().ConfigureAwait(false);
            owner.Dispose();
            if (temporary is not null) TryDelete(temporary);
            throw;
        }
    }

    /// <inheritdoc />
    public Task<ulong> SetAsync(IReadOnlyList<KeyValuePair<string, string>> pairs, CancellationToken cancellationToken = default) =>
        SetAsync(pairs, mayForward: true, cancellationToken);

    private Task<ulong> SetAsync(IReadOnlyList<KeyValuePair<string, string>> pairs, bool mayForward, CancellationToken cancellationToken)
    {
        byte[] command;
        try
        {
            // Checked before anything is proposed or forwarded: once in the log it could never be replicated.
            command = SetCommand(pairs);
        }
        catch (Exception e) when (e is NodeException or ArgumentException)
        {
            // As a failed task, like every other refusal, not thrown at the caller.
            return Task.FromException<ulong>(e);
        }
        return _router.RouteAsync(new RoutedCall<ulong>(new ForwardedRequest(ForwardedOp.Set, Pairs: pairs), d => ProposeHereAsync(command, d),
            r => r.Index, NeedsLeader: true, WriteTimedOut), mayForward, cancellationToken);
    }

    private byte[] SetCommand(IReadOnlyList<KeyValuePair<string, string>> pairs)
    {
        if (pairs.Count == 0) throw new NodeException(NodeErrorKind.BadRequest, "nothing to set: give at least one key");
        foreach (var (k, v) in pairs)
        {
            if (string.IsNullOrEmpty(k)) throw new NodeException(NodeErrorKind.BadRequest, "keys must not be empty");
            ArgumentNullException.ThrowIfNull(v);
        }
        var command = KvCommand.EncodeSet(pairs);
        if (CheckSize(command.Length) is { } tooLarge) throw tooLarge;
        return command;
    }

    /// <inheritdoc />
    public Task<ulong> DeleteAsync(string key, CancellationToken cancellationToken = default) => DeleteAsync(key, mayForward: true, cancellationToken);

    private Task<ulong> DeleteAsync(string key, bool mayForward, CancellationToken cancellationToken)
    {
        byte[] command;
        try
        {
            command = DeleteCommand(key);
        }
        catch (NodeException e)
        {
            return Task.FromException<ulong>(e);
        }
        return _router.RouteAsync(new RoutedCall<ulong>(new ForwardedRequest(ForwardedOp.Delete, Key: key), d => ProposeHereAsync(command, d),
            r => r.Index, NeedsLeader: true, WriteTimedOut), mayForward, cancellationToken);
    }

    private byte[] DeleteCommand(string key)
    {
        if (string.IsNullOrEmpty(key)) throw new NodeException(NodeErrorKind.BadRequest, "keys must not be empty");
        var command = KvCommand.EncodeDelete(key);
        if (CheckSize(command.Length) is { } tooLarge) throw tooLarge;
        return command;
    }

    private const string WriteTimedOut = "timed out waiting for the write to commit; it may or may not have been applied";
    private const string ReadTimedOut = "timed out waiting for the read to be confirmed";

    /// <summary>Proposes a command here and waits, within the deadline, until it is applied.</summary>
    private Task<ulong> ProposeHereAsync(byte[] command, RequestDeadline deadline) =>
        _loop.ProposeAsync(command, deadline.Remaining, deadline.Token).WaitAsync(deadline.Token);

    /// <summary>The refusal for a command larger than an entry this node's transport can replicate, or null.</summary>
    private NodeException? CheckSize(long commandBytes) => EntryLimits.Check(commandBytes, _options.Transport.MaxFrameSize);

    /// <inheritdoc />
    public Task<string?> GetAsync(string key, ReadLevel level, CancellationToken cancellationToken = default) =>
        GetAsync(key, level, mayForward: true, cancellationToken);

    private Task<string?> GetAsync(string key, ReadLevel level, bool mayForward, CancellationToken cancellationToken)
    {
        if (string.IsNullOrEmpty(key)) return Task.FromException<string?>(new NodeException(NodeErrorKind.BadRequest, "keys must not be empty"));
        if (!Enum.IsDefined(level)) return Task.FromException<string?>(new NodeException(NodeErrorKind.BadRequest, $"unknown read level {level}"));
        // Level none is this node's state as it is: nothing to route, nothing to wait for.
        if (level == ReadLevel.None) return Task.FromResult(_loop.State.Get(key));
        // A linearizable read is served by any member (it asks the leader for a read index itself); the others need the leader.
        return _router.RouteAsync(new RoutedCall<string?>(new ForwardedRequest(ForwardedOp.Get, Key: key, Level: level), d => ReadHereAsync(key, level, d),
            r => r.Value, NeedsLeader: level != ReadLevel.Linearizable, ReadTimedOut), mayForward, cancellationToken);
    }

    private async Task<string?> ReadHereAsync(string key, ReadLevel level, RequestDeadline deadline)
    {
        switch (level)
        {
            case ReadLevel.None:
                return _loop.State.Get(key);
            case ReadLevel.Weak:
                return await _loop.ReadWeakAsync(key).WaitAsync(deadline.Token).ConfigureAwait(false);
            case ReadLevel.Linearizable:
                return await _loop.ReadLinearizableAsync(key, deadline.Remaining, deadline.Token).WaitAsync(deadline.Token).ConfigureAwait(false);
            case ReadLevel.Strong:
                // Through the log: once the barrier is applied here, every write before it is too.
                await ProposeHereAsync(KvCommand.EncodeBarrier(), deadline).ConfigureAwait(false);
                return _loop.State.Get(key);
            default:
                throw new NodeException(NodeErrorKind.BadRequest, $"unknown read level {level}");
        }
    }

    /// <inheritdoc />
    public Task JoinAsync(JoinRequest request, CancellationToken cancellationToken = default) => JoinAsync(request, mayForward: true, cancellationToken);

    private Task JoinAsync(JoinRequest request, bool mayForward, CancellationToken cancellationToken) =>
        _router.RouteAsync(new RoutedCall<ulong>(
            new ForwardedRequest(ForwardedOp.Join, Id: request.Id, RaftAddress: request.RaftAddress, HttpAddress: request.HttpAddress, Voter: request.Voter,
                Incarnation: request.Incarnation, ClusterId: request.ClusterId),
            async d => { await JoinHereAsync(request, d).ConfigureAwait(false); return 0UL; },
            r => r.Index, NeedsLeader: true, ChangeTimedOut), mayForward, cancellationToken);

    private const string ChangeTimedOut = "timed out waiting for the membership change to commit; it may or may not have been applied";

    private async Task JoinHereAsync(JoinRequest request, RequestDeadline deadline)
    {
        var (id, raftAddress, httpAddress, voter) = (request.Id, request.RaftAddress, request.HttpAddress, request.Voter);
        if (string.IsNullOrEmpty(id) || string.IsNullOrEmpty(raftAddress))
            throw new NodeException(NodeErrorKind.BadRequest, "join needs a node id and its raft address");
        if (NodeIds.Problem(id) is { } idProblem)
            throw new NodeException(NodeErrorKind.BadRequest, idProblem);
        // Checked here, before the configuration: every node dials the raft address and builds forwarding URLs from the
        // HTTP one, so an address that cannot be used would break the cluster for everyone, not just this request.
        if (!NetworkAddress.IsDialable(raftAddress))
            throw new NodeException(NodeErrorKind.BadRequest, $"raft address \"{raftAddress}\" is not a host:port other nodes can dial");
        if (httpAddress.Length > 0 && !NetworkAddress.IsDialable(httpAddress))
            throw new NodeException(NodeErrorKind.BadRequest, $"HTTP address \"{httpAddress}\" is not a host:port other nodes can reach");
        var before = await _loop.MemberProgressAsync(id).WaitAsync(deadline.Token).ConfigureAwait(false);
        if (!NetworkAddress.IsLocalOnly(raftAddress) && before.LocalOnlyMember is { } local)
            throw new NodeException(NodeErrorKind.BadRequest,
                $"node '{local.Id}' listens for raft at {local.Address}, which a node at {raftAddress} (another host) cannot reach: " +
                "restart the members with --raft-addr (or --raft-adv-addr) set to an address other hosts can dial, then join again");
        if (request.ClusterId.Length > 0 && before.ClusterId.Length > 0 && request.ClusterId != before.ClusterId)
            throw OtherCluster(id, request.ClusterId, before.ClusterId);
        var existing = before.Member;
        var replacing = existing is not null && request.Incarnation != 0 && existing.Incarnation != 0 && existing.Incarnation != request.Incarnation;
        if (!voter || (existing is { IsVoter: true } && !replacing))
        {
            // A non-voter, or an address update of a voter: one change.
            var kind = voter ? ConfigChangeType.AddVoter : ConfigChangeType.AddNonVoter;
            await ChangeConfiguration(new ConfigChange(kind, id, raftAddress, request.Incarnation) { HttpAddress = httpAddress }, mustExist: false, deadline).ConfigureAwait(false);
            _log.LogInformation("{Id} joined as a {Kind} at {Address}", id, voter ? "voter" : "non-voter", raftAddress);
            return;
        }
        // A voter that is new, a non-voter, or a voter that lost its data: it counts in quorums only once it holds the
        // log, so it joins (or is replaced) as a non-voter, is caught up, then promoted. Adding an empty voter at once
        // would make every commit wait for it, and a voter that never comes up would halve the fault tolerance.
        if (replacing && _lastReplacementLogged != (id, request.Incarnation))
        {
            // Once per replacement: a joiner retries until it is promoted, and each try comes through here.
            _lastReplacementLogged = (id, request.Incarnation);
            _log.LogWarning("{Id} rejoins as incarnation {New}: incarnation {Old} lost its data. It is replaced as a non-voter and promoted once caught up",
                id, Incarnations.Format(request.Incarnation), Incarnations.Format(existing!.Incarnation));
        }
        // A refusal older than this join is about a previous life at that address (a node that had founded a cluster of
        // its own, since wiped): only one met by this join says the node is of another cluster.
        var joinStarted = Environment.TickCount64;
        if (existing is not { IsVoter: false } || replacing || existing.Address != raftAddress || existing.HttpAddress != httpAddress)
            await ChangeConfiguration(new ConfigChange(ConfigChangeType.AddNonVoter, id, raftAddress, request.Incarnation) { HttpAddress = httpAddress }, mustExist: false, deadline).ConfigureAwait(false);
        ulong incarnation;
        try
        {
            incarnation = await WaitCaughtUpAsync(id, joinStarted, deadline).ConfigureAwait(false);
        }
        catch (NodeException e) when (e.Kind == NodeErrorKind.Conflict && existing is null)
        {
            // Added a moment ago and refused us: take it out again, so nothing of this join stays behind.
            try
            {
                await ChangeConfiguration(new ConfigChange(ConfigChangeType.Remove, id), mustExist: true, deadline).ConfigureAwait(false);
            }
            catch (NodeException removal)
            {
                _log.LogWarning("could not remove {Id} after it refused to join: {Error}", id, removal.Message);
            }
            throw;
        }
        await ChangeConfiguration(new ConfigChange(ConfigChangeType.AddVoter, id, raftAddress, incarnation) { HttpAddress = httpAddress }, mustExist: true, deadline).ConfigureAwait(false);
        _log.LogInformation("{Id} joined as a voter at {Address} (incarnation {Incarnation})", id, raftAddress, Incarnations.Format(incarnation));
    }

    /// <summary>
    /// Waits, within the request timeout, until the non-voter <paramref name="id"/> holds every entry committed when the
    /// wait began, and returns its incarnation (the configuration's, or the one its connection announced).
    /// </summary>
    private async Task<ulong> WaitCaughtUpAsync(string id, long refusedSinceTick, RequestDeadline deadline)
    {
        ulong? target = null;
        for (var retry = 0; ; retry++)
        {
            var p = await _loop.MemberProgressAsync(id, refusedSinceTick).WaitAsync(deadline.Token).ConfigureAwait(false);
            if (!p.IsLeader) throw new NodeException(NodeErrorKind.NotLeader, "leadership moved while the new member was catching up; join again");
            if (p.Member is null) throw new NodeException(NodeErrorKind.NotFound, $"node '{id}' was removed while it was catching up");
            if (p.RefusedAsOtherCluster is { } other) throw OtherCluster(id, other, p.ClusterId);
            target ??= p.CommitIndex;
            var incarnation = p.Member.Incarnation != 0 ? p.Member.Incarnation : p.ObservedIncarnation;
            if (p.Match >= target && incarnation != 0) return incarnation;
            var pause = LeaderRouter.ClusterWait.Delay(retry);
            if (pause > deadline.Remaining)
                throw new NodeException(NodeErrorKind.Timeout,
                    $"node '{id}' is a non-voter and has not caught up yet (it holds index {p.Match} of {target}); it is promoted to voter when a join is repeated after it caught up");
            await Task.Delay(pause, deadline.Token).ConfigureAwait(false);
        }
    }

    private static NodeException OtherCluster(string id, string theirs, string ours) => new(NodeErrorKind.Conflict,
        $"node '{id}' belongs to another cluster ({theirs}; this one is {ours}): it founded or joined that cluster before, and the two never merge. " +
        "To add it here, stop it, empty its data directory, and start it with -join naming a member of this cluster");

    /// <inheritdoc />
    public Task RemoveAsync(string id, CancellationToken cancellationToken = default) => RemoveAsync(id, mayForward: true, cancellationToken);

    private Task RemoveAsync(string id, bool mayForward, CancellationToken cancellationToken) =>
        _router.RouteAsync(new RoutedCall<ulong>(new ForwardedRequest(ForwardedOp.Remove, Id: id),
            async d => { await RemoveHereAsync(id, d).ConfigureAwait(false); return 0UL; },
            r => r.Index, NeedsLeader: true, ChangeTimedOut), mayForward, cancellationToken);

    private Task RemoveHereAsync(string id, RequestDeadline deadline) =>
        ChangeConfiguration(new ConfigChange(ConfigChangeType.Remove, id), mustExist: true, deadline);

    /// <inheritdoc />
    public Task TransferLeadershipAsync(string? targetId, CancellationToken cancellationToken = default) =>
        TransferLeadershipAsync(targetId, mayForward: true, cancellationToken);

    private Task TransferLeadershipAsync(string? targetId, bool mayForward, CancellationToken cancellationToken) =>
        _router.RouteAsync(new RoutedCall<ulong>(new ForwardedRequest(ForwardedOp.Transfer, Id: targetId),
            async d => { await TransferHereAsync(targetId, d).ConfigureAwait(false); return 0UL; },
            r => r.Index, NeedsLeader: true, "leadership did not move within the request timeout"), mayForward, cancellationToken);

    private Task TransferHereAsync(string? targetId, RequestDeadline deadline) => _loop.TransferLeadershipAsync(targetId).WaitAsync(deadline.Token);

    /// <inheritdoc />
    public async Task<ulong> SnapshotAsync(CancellationToken cancellationToken = default)
    {
        try
        {
            // Writing a large map can take longer than a request; the snapshot finishes in the background regardless.
            return await _loop.SnapshotNowAsync().WaitAsync(_options.RequestTimeout * 6, cancellationToken).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            throw new NodeException(NodeErrorKind.Timeout, "the snapshot is still being written");
        }
    }

    /// <inheritdoc />
    public async Task<NodeStatus> GetStatusAsync(CancellationToken cancellationToken = default)
    {
        try
        {
            return await _loop.StatusAsync().WaitAsync(_options.RequestTimeout, cancellationToken).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            throw new NodeException(NodeErrorKind.Timeout, "the node did not answer within the request timeout");
        }
    }

    /// <summary>
    /// Serves a call a follower forwarded: here, never forwarded again (with stale leader information two nodes could
    /// otherwise bounce it between them). If this node no longer leads, the refusal names the leader it knows, and the
    /// follower's routing follows it once.
    /// </summary>
    internal async Task<byte[]> AnswerForwardedAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        try
        {
            var r = ForwardedRequest.Decode(data);
            // The follower's deadline, carried along: this node stops when the follower's caller does.
            var timeout = r.Timeout > TimeSpan.Zero && r.Timeout < _options.RequestTimeout ? r.Timeout : _options.RequestTimeout;
            using var deadline = RequestDeadline.Start(timeout, TimeProvider.System, cancellationToken);
            ulong index = 0;
            string? value = null;
            try
            {
                switch (r.Op)
                {
                    case ForwardedOp.Set: index = await ProposeHereAsync(SetCommand(r.Pairs ?? []), deadline).ConfigureAwait(false); break;
                    case ForwardedOp.Delete: index = await ProposeHereAsync(DeleteCommand(r.Key ?? ""), deadline).ConfigureAwait(false); break;
                    case ForwardedOp.Get:
                        if (string.IsNullOrEmpty(r.Key)) throw new NodeException(NodeErrorKind.BadRequest, "keys must not be empty");
                        value = await ReadHereAsync(r.Key, r.Level, deadline).ConfigureAwait(false);
                        break;
                    case ForwardedOp.Join:
                        await JoinHereAsync(new JoinRequest(r.Id ?? "", r.RaftAddress ?? "", r.HttpAddress ?? "", r.Voter, r.Incarnation, r.ClusterId ?? ""), deadline)
                            .ConfigureAwait(false);
                        break;
                    case ForwardedOp.Remove: await RemoveHereAsync(r.Id ?? "", deadline).ConfigureAwait(false); break;
                    case ForwardedOp.Transfer: await TransferHereAsync(r.Id, deadline).ConfigureAwait(false); break;
                }
            }
            catch (OperationCanceledException) when (deadline.Passed && !cancellationToken.IsCancellationRequested)
            {
                throw new NodeException(NodeErrorKind.Timeout, r.Op == ForwardedOp.Get ? ReadTimedOut : "the leader timed out; the request may or may not have been applied");
            }
            return new ForwardedResult(index, value, null).Encode();
        }
        catch (NodeException e)
        {
            return new ForwardedResult(0, null, e).Encode();
        }
        catch (Exception e) when (e is InvalidDataException or EndOfStreamException or ArgumentException)
        {
            return new ForwardedResult(0, null, new NodeException(NodeErrorKind.BadRequest, "malformed forwarded call: " + e.Message)).Encode();
        }
        catch (OperationCanceledException)
        {
            return new ForwardedResult(0, null, new NodeException(NodeErrorKind.Timeout, "the leader timed out; the request may or may not have been applied")).Encode();
        }
    }

    Task<byte[]> IRoutedNode.AnswerForwardedAsync(ReadOnlyMemory<byte> call, CancellationToken cancellationToken) => AnswerForwardedAsync(call, cancellationToken);

    /// <inheritdoc />
    LeaderView IRoutedNode.Leader => _loop.Leader;

    /// <inheritdoc />
    void IRoutedNode.ForwardThrough(ILeaderForwarder forwarder) => _router.Forwarder = forwarder;

    /// <inheritdoc />
    IKvNode IRoutedNode.Redirecting => _redirecting;

    /// <summary>This node, with calls that need the leader refused (naming it) instead of forwarded.</summary>
    private sealed class RedirectingNode(KvNode node) : IKvNode
    {
        public string Id => node.Id;
        public Task<string> Failed => node.Failed;
        public Task<ulong> SetAsync(IReadOnlyList<KeyValuePair<string, string>> pairs, CancellationToken cancellationToken = default) =>
            node.SetAsync(pairs, mayForward: false, cancellationToken);
        public Task<ulong> DeleteAsync(string key, CancellationToken cancellationToken = default) => node.DeleteAsync(key, mayForward: false, cancellationToken);
        public Task<string?> GetAsync(string key, ReadLevel level, CancellationToken cancellationToken = default) =>
            node.GetAsync(key, level, mayForward: false, cancellationToken);
        public Task JoinAsync(JoinRequest request, CancellationToken cancellationToken = default) => node.JoinAsync(request, mayForward: false, cancellationToken);
        public Task RemoveAsync(string id, CancellationToken cancellationToken = default) => node.RemoveAsync(id, mayForward: false, cancellationToken);
        public Task TransferLeadershipAsync(string? targetId, CancellationToken cancellationToken = default) =>
            node.TransferLeadershipAsync(targetId, mayForward: false, cancellationToken);
        public Task<ulong> SnapshotAsync(CancellationToken cancellationToken = default) => node.SnapshotAsync(cancellationToken);
        public Task<NodeStatus> GetStatusAsync(CancellationToken cancellationToken = default) => node.GetStatusAsync(cancellationToken);
        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }

    private async Task ChangeConfiguration(ConfigChange change, bool mustExist, RequestDeadline deadline)
    {
        // A change refused because another is in flight (or a new leader has not committed yet) is retried until the deadline.
        for (var retry = 0; ; retry++)
        {
            try
            {
                await _loop.ChangeConfigurationAsync(change, mustExist).WaitAsync(deadline.Token).ConfigureAwait(false);
                return;
            }
            catch (NodeException e) when (e.Kind == NodeErrorKind.Busy && !deadline.Token.IsCancellationRequested)
            {
                try
                {
                    await Task.Delay(LeaderRouter.ClusterWait.Delay(retry), deadline.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (deadline.Passed)
                {
                    throw new NodeException(NodeErrorKind.Timeout, "another membership change kept the cluster busy; the change was not made");
                }
            }
        }
    }

    /// <summary>Stops the loop, closes connections and storage (everything acknowledged is already durable).</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        // With inline completions the caller may be running on a loop thread (it awaited a write, then disposes). This
        // node's loop cannot wait for itself to stop (its storage and the data directory's lock would stay open), and
        // another node's loop must not wait for this one (up to 20 s on a hung disk): stop from the pool instead.
        if (RaftLoop.OnAnyLoopThread) await Task.Yield();
        _loop.Dispose();
        await _transport.DisposeAsync().ConfigureAwait(false);
        // Closing storage under a loop still writing (stuck on a hung disk) would turn a stall into corruption.
        if (_loop.Stopped) _storage.Dispose();
        else _log.LogError("the raft loop did not stop within 10 s; storage is left open");
        if (_temporaryDirectory is not null) TryDelete(_temporaryDirectory);
    }

    private static void TryDelete(string directory)
    {
        try
        {
            Directory.Delete(directory, recursive: true);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }
}
