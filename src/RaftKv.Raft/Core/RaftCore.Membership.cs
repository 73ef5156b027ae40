namespace RaftKv.Raft;

// Membership changes, one server at a time (thesis §4.1): a configuration takes effect as soon as its entry is
// appended, and is undone if that entry is truncated.
public sealed partial class RaftCore
{
    /// <summary>The configuration in force: the newest one in the log, committed or not.</summary>
    public ClusterConfig Config => _tracker.Config;

    /// <summary>Index of the entry that carries <see cref="Config"/> (or of the snapshot it came from).</summary>
    public ulong ConfigIndex => _configs.NewestIndex;

    /// <summary>True while the newest configuration entry is not committed.</summary>
    public bool ConfigChangePending => ConfigIndex > _log.Committed;

    private void LoadConfiguration(IRaftLogStorage storage)
    {
        _configs.Load(storage);
        _tracker.Config = _configs.Newest;
    }

    /// <summary>Appends entries to the log, keeping the configuration history in step (truncated entries take their configurations with them).</summary>
    private void AppendToLog(ReadOnlySpan<Entry> entries)
    {
        if (entries.IsEmpty) return;
        var changed = _configs.TruncateFrom(entries[0].Index);
        _log.Append(entries);
        foreach (var e in entries)
        {
            if (e.Type != EntryType.Configuration) continue;
            _configs.Add(e.Index, ClusterConfig.Decode(e.Data.Span));
            changed = true;
        }
        if (changed) SetConfig(_configs.Newest);
    }

    private void RestoreConfiguration(SnapshotMetadata snapshot)
    {
        _configs.Restore(snapshot.Config, snapshot.Index);
        SetConfig(_configs.Newest);
    }

    private void SetConfig(ClusterConfig config)
    {
        if (ReferenceEquals(config, Config)) return;
        var previous = Config;
        _tracker.Config = config;
        if (Role != Role.Leader) return;
        foreach (var m in config.Members)
        {
            // Another incarnation under the same id is another server, and so is a server added anew: what the leader
            // knew of the old one's log (a removed member's progress lingers, see below) is void.
            if (m.Id != Id && (previous.Find(m.Id) is not { } before || before.Incarnation != m.Incarnation)) _tracker.Remove(m.Id);
            AddProgress(m.Id);
        }
        // A removed member keeps its progress for now, so the leader still sends it the log and the commit index: that
        // is how it learns it was removed (and stops campaigning) instead of waiting for a leader forever.
        foreach (var (id, pr) in _tracker)
        {
            if (id != Id && config.Find(id) is null) pr.RoundsSinceRemoved = 0;
        }
        if (_leadTransferee is not null && !config.IsVoter(_leadTransferee)) AbortLeaderTransfer("the target is no longer a voter");
        // The quorum changed: what is committed may have changed with it, and so may the rounds a quorum has
        // answered (down to the leader alone, which answers its own: no answer may ever come from anyone else).
        if (MaybeCommit()) _commitBroadcastPending = true;
        ReleaseReads();
    }

    /// <summary>
    /// Once its removal is committed, a removed member is sent the log and the commit index for one more election
    /// timeout (so it hears of its removal if it is reachable), then forgotten. Called at each check-quorum round.
    /// </summary>
    private void ForgetRemovedMembers()
    {
        if (ConfigChangePending) return;
        List<string>? gone = null;
        foreach (var (id, pr) in _tracker)
        {
            if (id != Id && Config.Find(id) is null && pr.RoundsSinceRemoved++ >= 1) (gone ??= []).Add(id);
        }
        if (gone is not null) foreach (var id in gone) _tracker.Remove(id);
    }

    /// <summary>The configuration as of <paramref name="index"/> (for snapshot metadata).</summary>
    public ClusterConfig ConfigAt(ulong index) => _configs.At(index);

    /// <summary>
    /// Proposes a single-server membership change. Refused unless this is the leader, the previous change is
    /// committed, and the leader has committed an entry of its own term (which closes the known hole in
    /// single-server changes across leader changes: thesis §4.1 and its 2015 errata).
    /// </summary>
    public ProposeResult ProposeConfigChange(ConfigChange change)
    {
        EnsureNoReadyOutstanding();
        var refusal = CheckCanPropose(64);
        if (refusal is not null) return refusal.Value;
        if (_log.Committed < _ownTermStart)
            return ProposeResult.Refused(Refusal.ConfigChangeInProgress, Leader, "the new leader has not committed an entry of its term yet; retry shortly");
        if (ConfigChangePending)
            return ProposeResult.Refused(Refusal.ConfigChangeInProgress, Leader, "another configuration change is not committed yet; retry shortly");
        var next = Config.Apply(change, out var error);
        if (next is null) return ProposeResult.Refused(Refusal.InvalidConfigChange, Leader, error ?? "invalid change");
        return AppendOwn(EntryType.Configuration, next.Encode());
    }

    /// <summary>A leader whose removal has committed steps down, handing over to the most up-to-date voter if it can.</summary>
    private void MaybeStepDownAfterRemoval()
    {
        if (Role != Role.Leader || Config.Find(Id) is not null || ConfigChangePending) return;
        string? best = null;
        ulong bestMatch = 0;
        foreach (var v in Config.Voters)
        {
            if (_tracker.TryGet(v, out var pr) && (best is null || pr.Match > bestMatch))
            {
                best = v;
                bestMatch = pr.Match;
            }
        }
        if (best is not null && bestMatch == _log.LastIndex) SendTimeoutNow(best);
        BecomeFollower(Term, null, "its removal from the configuration is committed");
    }

    /// <summary>
    /// Metadata for a snapshot of the state machine at <paramref name="index"/> (at most the applied index): the
    /// term of that entry and the configuration then in force.
    /// </summary>
    public SnapshotMetadata SnapshotMetadataAt(ulong index)
    {
        if (index > _log.Applied) throw new ArgumentOutOfRangeException(nameof(index), $"snapshot index {index} is beyond the applied index {_log.Applied}");
        var term = _log.TryTerm(index) ?? throw new ArgumentOutOfRangeException(nameof(index), $"index {index} is compacted");
        return new SnapshotMetadata(index, term, ConfigAt(index));
    }

    /// <summary>
    /// Tells the core that a snapshot now covers the log up to <paramref name="snapshot"/>.Index (the runtime has
    /// stored it and recorded it in the log storage, and may compact the log up to it). The core offers it to
    /// followers that need compacted entries.
    /// </summary>
    public void SnapshotTaken(SnapshotMetadata snapshot)
    {
        EnsureNoReadyOutstanding();
        if (snapshot.Index > _log.Applied) throw new ArgumentOutOfRangeException(nameof(snapshot), "snapshot beyond the applied index");
        _configs.Compact(snapshot.Index);
    }
}
