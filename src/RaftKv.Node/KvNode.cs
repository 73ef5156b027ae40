using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
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
public sealed class KvNode : IKvNode
{
    private readonly NodeOptions _options;
    private readonly RaftLoop _loop;
    private readonly IRaftTransport _transport;
    private readonly IDisposable _storage;
    private readonly string? _temporaryDirectory;
    private readonly ILogger _log;
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
        Route(() => SetLocalAsync(pairs, cancellationToken), new ForwardedRequest(ForwardedOp.Set, Pairs: pairs), r => r.Index, cancellationToken);

    private Task<ulong> SetLocalAsync(IReadOnlyList<KeyValuePair<string, string>> pairs, CancellationToken cancellationToken)
    {
        if (pairs.Count == 0) throw new NodeException(NodeErrorKind.BadRequest, "nothing to set: give at least one key");
        foreach (var (k, v) in pairs)
        {
            if (string.IsNullOrEmpty(k)) throw new NodeException(NodeErrorKind.BadRequest, "keys must not be empty");
            ArgumentNullException.ThrowIfNull(v);
        }
        // Checked before the proposal (and before a follower forwards it): once in the log it could never be replicated.
        var command = KvCommand.EncodeSet(pairs);
        if (CheckSize(command.Length) is { } tooLarge) throw tooLarge;
        return Write(_loop.ProposeAsync(command, _options.RequestTimeout, cancellationToken), cancellationToken);
    }

    /// <inheritdoc />
    public Task<ulong> DeleteAsync(string key, CancellationToken cancellationToken = default) =>
        Route(() => DeleteLocalAsync(key, cancellationToken), new ForwardedRequest(ForwardedOp.Delete, Key: key), r => r.Index, cancellationToken);

    private Task<ulong> DeleteLocalAsync(string key, CancellationToken cancellationToken)
    {
        if (string.IsNullOrEmpty(key)) throw new NodeException(NodeErrorKind.BadRequest, "keys must not be empty");
        var command = KvCommand.EncodeDelete(key);
        if (CheckSize(command.Length) is { } tooLarge) throw tooLarge;
        return Write(_loop.ProposeAsync(command, _options.RequestTimeout, cancellationToken), cancellationToken);
    }

    /// <summary>The refusal for a command larger than an entry this node's transport can replicate, or null.</summary>
    private NodeException? CheckSize(long commandBytes) => EntryLimits.Check(commandBytes, _options.Transport.MaxFrameSize);

    /// <inheritdoc />
    public Task<string?> GetAsync(string key, ReadLevel level, CancellationToken cancellationToken = default) =>
        Route(() => GetLocalAsync(key, level, cancellationToken), new ForwardedRequest(ForwardedOp.Get, Key: key, Level: level), r => r.Value, cancellationToken);

    private async Task<string?> GetLocalAsync(string key, ReadLevel level, CancellationToken cancellationToken)
    {
        if (string.IsNullOrEmpty(key)) throw new NodeException(NodeErrorKind.BadRequest, "keys must not be empty");
        switch (level)
        {
            case ReadLevel.None:
                return _loop.State.Get(key);
            case ReadLevel.Weak:
                return await Read(_loop.ReadWeakAsync(key), cancellationToken).ConfigureAwait(false);
            case ReadLevel.Linearizable:
                return await Read(_loop.ReadLinearizableAsync(key, _options.RequestTimeout, cancellationToken), cancellationToken).ConfigureAwait(false);
            case ReadLevel.Strong:
                // Through the log: once the barrier is applied here, every write before it is too.
                await Write(_loop.ProposeAsync(KvCommand.EncodeBarrier(), _options.RequestTimeout, cancellationToken), cancellationToken).ConfigureAwait(false);
                return _loop.State.Get(key);
            default:
                throw new NodeException(NodeErrorKind.BadRequest, $"unknown read level {level}");
        }
    }

    /// <inheritdoc />
    public Task JoinAsync(JoinRequest request, CancellationToken cancellationToken = default) =>
        Route(async () => { await JoinLocalAsync(request, cancellationToken).ConfigureAwait(false); return 0UL; },
            new ForwardedRequest(ForwardedOp.Join, Id: request.Id, RaftAddress: request.RaftAddress, HttpAddress: request.HttpAddress, Voter: request.Voter,
                Incarnation: request.Incarnation, ClusterId: request.ClusterId),
            r => r.Index, cancellationToken);

    private async Task JoinLocalAsync(JoinRequest request, CancellationToken cancellationToken)
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
        var before = await _loop.MemberProgressAsync(id).ConfigureAwait(false);
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
            await ChangeConfiguration(new ConfigChange(kind, id, raftAddress, request.Incarnation) { HttpAddress = httpAddress }, mustExist: false, cancellationToken).ConfigureAwait(false);
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
            await ChangeConfiguration(new ConfigChange(ConfigChangeType.AddNonVoter, id, raftAddress, request.Incarnation) { HttpAddress = httpAddress }, mustExist: false, cancellationToken).ConfigureAwait(false);
        ulong incarnation;
        try
        {
            incarnation = await WaitCaughtUpAsync(id, joinStarted, cancellationToken).ConfigureAwait(false);
        }
        catch (NodeException e) when (e.Kind == NodeErrorKind.Conflict && existing is null)
        {
            // Added a moment ago and refused us: take it out again, so nothing of this join stays behind.
            try
            {
                await ChangeConfiguration(new ConfigChange(ConfigChangeType.Remove, id), mustExist: true, cancellationToken).ConfigureAwait(false);
            }
            catch (NodeException removal)
            {
                _log.LogWarning("could not remove {Id} after it refused to join: {Error}", id, removal.Message);
            }
            throw;
        }
        await ChangeConfiguration(new ConfigChange(ConfigChangeType.AddVoter, id, raftAddress, incarnation) { HttpAddress = httpAddress }, mustExist: true, cancellationToken).ConfigureAwait(false);
        _log.LogInformation("{Id} joined as a voter at {Address} (incarnation {Incarnation})", id, raftAddress, Incarnations.Format(incarnation));
    }

    /// <summary>
    /// Waits, within the request timeout, until the non-voter <paramref name="id"/> holds every entry committed when the
    /// wait began, and returns its incarnation (the configuration's, or the one its connection announced).
    /// </summary>
    private async Task<ulong> WaitCaughtUpAsync(string id, long refusedSinceTick, CancellationToken cancellationToken)
    {
        var deadline = Stopwatch.GetTimestamp() + (long)(_options.RequestTimeout.TotalSeconds * Stopwatch.Frequency);
        ulong? target = null;
        var delay = TimeSpan.FromMilliseconds(10);
        while (true)
        {
            var p = await _loop.MemberProgressAsync(id, refusedSinceTick).ConfigureAwait(false);
            if (!p.IsLeader) throw new NodeException(NodeErrorKind.NotLeader, "leadership moved while the new member was catching up; join again");
            if (p.Member is null) throw new NodeException(NodeErrorKind.NotFound, $"node '{id}' was removed while it was catching up");
            if (p.RefusedAsOtherCluster is { } other) throw OtherCluster(id, other, p.ClusterId);
            target ??= p.CommitIndex;
            var incarnation = p.Member.Incarnation != 0 ? p.Member.Incarnation : p.ObservedIncarnation;
            if (p.Match >= target && incarnation != 0) return incarnation;
            if (Stopwatch.GetTimestamp() + (long)(delay.TotalSeconds * Stopwatch.Frequency) > deadline)
                throw new NodeException(NodeErrorKind.Timeout,
                    $"node '{id}' is a non-voter and has not caught up yet (it holds index {p.Match} of {target}); it is promoted to voter when a join is repeated after it caught up");
            await Task.Delay(delay, cancellationToken).ConfigureAwait(false);
            delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, TimeSpan.FromMilliseconds(200).Ticks));
        }
    }

    private static NodeException OtherCluster(string id, string theirs, string ours) => new(NodeErrorKind.Conflict,
        $"node '{id}' belongs to another cluster ({theirs}; this one is {ours}): it founded or joined that cluster before, and the two never merge. " +
        "To add it here, stop it, empty its data directory, and start it with -join naming a member of this cluster");

    /// <inheritdoc />
    public Task RemoveAsync(string id, CancellationToken cancellationToken = default) =>
        Route(async () => { await RemoveLocalAsync(id, cancellationToken).ConfigureAwait(false); return 0UL; },
            new ForwardedRequest(ForwardedOp.Remove, Id: id), r => r.Index, cancellationToken);

    private Task RemoveLocalAsync(string id, CancellationToken cancellationToken) =>
        ChangeConfiguration(new ConfigChange(ConfigChangeType.Remove, id), mustExist: true, cancellationToken);

    /// <inheritdoc />
    public Task TransferLeadershipAsync(string? targetId, CancellationToken cancellationToken = default) =>
        Route(async () => { await TransferLocalAsync(targetId, cancellationToken).ConfigureAwait(false); return 0UL; },
            new ForwardedRequest(ForwardedOp.Transfer, Id: targetId), r => r.Index, cancellationToken);

    private async Task TransferLocalAsync(string? targetId, CancellationToken cancellationToken)
    {
        try
        {
            await _loop.TransferLeadershipAsync(targetId).WaitAsync(_options.RequestTimeout, cancellationToken).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            throw new NodeException(NodeErrorKind.Timeout, "leadership did not move within the request timeout");
        }
    }

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
    /// Runs an operation here; if it needs the leader and this node is not it, hands it to the leader over the raft
    /// transport (when <see cref="NodeOptions.ForwardToLeader"/>) and returns the leader's answer. One hop only: a
    /// leader that lost its role meanwhile answers "not leader", and the caller retries.
    /// </summary>
    private async Task<T> Route<T>(Func<Task<T>> local, ForwardedRequest request, Func<ForwardedResult, T> result, CancellationToken cancellationToken)
    {
        try
        {
            return await WaitForLeader(local, cancellationToken).ConfigureAwait(false);
        }
        catch (NodeException e) when (_options.ForwardToLeader && e.Kind == NodeErrorKind.NotLeader && e.LeaderId is not null)
        {
            byte[] answer;
            try
            {
                answer = await _transport.CallAsync(e.LeaderId, request.Encode(), _options.RequestTimeout, cancellationToken).ConfigureAwait(false);
            }
            catch (IOException io)
            {
                throw request.Op == ForwardedOp.Get
                    ? new NodeException(NodeErrorKind.NoLeader, $"could not reach the leader {e.LeaderId}: {io.Message}")
                    : new NodeException(NodeErrorKind.Timeout, $"forwarding to the leader {e.LeaderId} failed ({io.Message}); the request may or may not have been applied");
            }
            var decoded = ForwardedResult.Decode(answer);
            if (decoded.Error is not null) throw decoded.Error;
            return result(decoded);
        }
    }

    /// <summary>
    /// With forwarding on, an operation refused because no leader is known yet (an election, or a node that has just
    /// joined) is retried until the request timeout: it never reached the log, so retrying is safe.
    /// </summary>
    private async Task<T> WaitForLeader<T>(Func<Task<T>> local, CancellationToken cancellationToken)
    {
        var deadline = DateTime.UtcNow + _options.RequestTimeout;
        var delay = TimeSpan.FromMilliseconds(10);
        while (true)
        {
            try
            {
                return await local().ConfigureAwait(false);
            }
            catch (NodeException e) when (_options.ForwardToLeader && e.Kind == NodeErrorKind.NoLeader && DateTime.UtcNow + delay < deadline)
            {
                await Task.Delay(delay, cancellationToken).ConfigureAwait(false);
                delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, TimeSpan.FromMilliseconds(200).Ticks));
            }
        }
    }

    /// <summary>Serves a call a follower forwarded: run it here, never forward it again.</summary>
    private async Task<byte[]> AnswerForwardedAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        try
        {
            var r = ForwardedRequest.Decode(data);
            ulong index = 0;
            string? value = null;
            switch (r.Op)
            {
                case ForwardedOp.Set: index = await SetLocalAsync(r.Pairs ?? [], cancellationToken).ConfigureAwait(false); break;
                case ForwardedOp.Delete: index = await DeleteLocalAsync(r.Key ?? "", cancellationToken).ConfigureAwait(false); break;
                case ForwardedOp.Get: value = await GetLocalAsync(r.Key ?? "", r.Level, cancellationToken).ConfigureAwait(false); break;
                case ForwardedOp.Join:
                    await JoinLocalAsync(new JoinRequest(r.Id ?? "", r.RaftAddress ?? "", r.HttpAddress ?? "", r.Voter, r.Incarnation, r.ClusterId ?? ""), cancellationToken).ConfigureAwait(false);
                    break;
                case ForwardedOp.Remove: await RemoveLocalAsync(r.Id ?? "", cancellationToken).ConfigureAwait(false); break;
                case ForwardedOp.Transfer: await TransferLocalAsync(r.Id, cancellationToken).ConfigureAwait(false); break;
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

    private async Task ChangeConfiguration(ConfigChange change, bool mustExist, CancellationToken cancellationToken)
    {
        // A change refused because another is in flight (or a new leader has not committed yet) is retried until the deadline.
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(_options.RequestTimeout);
        var delay = TimeSpan.FromMilliseconds(20);
        while (true)
        {
            try
            {
                await Write(_loop.ChangeConfigurationAsync(change, mustExist), deadline.Token).ConfigureAwait(false);
                return;
            }
            catch (NodeException e) when (e.Kind == NodeErrorKind.Busy && !deadline.IsCancellationRequested)
            {
                try
                {
                    await Task.Delay(delay, deadline.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
                {
                    throw new NodeException(NodeErrorKind.Timeout, "another membership change kept the cluster busy; the change was not made");
                }
                delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, TimeSpan.FromMilliseconds(500).Ticks));
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                throw new NodeException(NodeErrorKind.Timeout, "timed out waiting for the membership change to commit; it may or may not have been applied");
            }
        }
    }

    private async Task<ulong> Write(Task<ulong> task, CancellationToken cancellationToken)
    {
        try
        {
            return await task.WaitAsync(_options.RequestTimeout, cancellationToken).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            throw new NodeException(NodeErrorKind.Timeout, "timed out waiting for the write to commit; it may or may not have been applied");
        }
    }

    private async Task<string?> Read(Task<string?> task, CancellationToken cancellationToken)
    {
        try
        {
            return await task.WaitAsync(_options.RequestTimeout, cancellationToken).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            throw new NodeException(NodeErrorKind.Timeout, "timed out waiting for the read to be confirmed");
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
