using Microsoft.Extensions.Logging;
using RaftKv.Node.StateMachine;
using RaftKv.Raft;
using RaftKv.Storage.Snapshots;

namespace RaftKv.Node.Runtime;

// What the Ready processor hands to the world, and how the answers come back to the loop thread: messages go to the
// transport, snapshots are written and streamed on other threads, and WAL flushes run on the BackgroundSyncer's.
// Each outcome is posted to the loop, which hands it to the processor.
internal sealed partial class RaftLoop : IMessageSink, ISnapshotFiles
{
    bool IMessageSink.Send(Message message) => _transport.Send(message);

    /// <summary>
    /// Hands an InstallSnapshot to the transport, which streams the file (one transfer per peer at a time) and reports
    /// the outcome; the core waits for that report rather than restarting a long transfer after an election timeout.
    /// </summary>
    bool IMessageSink.SendSnapshot(Message m)
    {
        var info = _snapshots.Find(m.Snapshot!.Index);
        if (info is null)
        {
            _log.LogWarning("snapshot {Index} for {Peer} is gone; the leader will pick a newer one", m.Snapshot.Index, m.To);
            return false;
        }
        _transport.SendSnapshot(m, info, ok =>
        {
            try
            {
                Post(() => _processor.SnapshotSent(m.To, ok));
            }
            catch (NodeException)
            {
                // Shutting down: nobody is waiting for the outcome.
            }
        });
        return true;
    }

    void IMessageSink.ConfigurationChanged(ClusterConfig config)
    {
        _transport.SetIdentity(config.ClusterId, _incarnation);
        var peers = new Dictionary<string, string>();
        foreach (var m in config.Members)
        {
            if (m.Id != _options.Id) peers[m.Id] = m.Address;
        }
        _transport.SetPeers(peers);
    }

    Stream ISnapshotFiles.OpenReceived(ulong index)
    {
        var info = _snapshots.Find(index) ?? throw new InvalidOperationException($"installed snapshot {index} is not in the snapshot store");
        return SnapshotStore.OpenRead(info);
    }

    void ISnapshotFiles.ReleaseReceived(ulong index) => _snapshots.ReleaseReceived(index);

    /// <summary>Writes the snapshot on a pool thread while the loop goes on.</summary>
    void ISnapshotFiles.StartWrite(SnapshotMetadata meta, IStateSnapshot view)
    {
        Task.Run(() =>
        {
            using var writer = _snapshots.Create(meta);
            view.WriteTo(writer.Stream);
            writer.Commit();
        }).ContinueWith(t =>
        {
            try
            {
                Post(() => _processor.SnapshotWritten(meta, t.Exception?.GetBaseException()));
            }
            catch (NodeException)
            {
                // Shutting down: the snapshot file is complete but unrecorded; the next start finds it.
            }
        }, TaskScheduler.Default);
    }

    // Runs on the syncer's thread.
    private void OnSynced(long seq, IBackgroundSync sync)
    {
        if (_stopping) return;
        try
        {
            Post(() => _processor.SyncsCompleted(seq, sync));
        }
        catch (NodeException)
        {
            // Stopping: nothing waits for it any more.
        }
    }

    // Runs on the syncer's thread: the log is marked unusable at once, and the loop stops at its next turn.
    private void OnSyncFailed(Exception e)
    {
        _storage.FailSync(e);
        if (_stopping) return;
        try
        {
            Post(() => ReadyProcessor.SyncFailed(e));
        }
        catch (NodeException)
        {
        }
    }
}
