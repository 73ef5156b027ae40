using RaftKv.Node.Runtime;
using RaftKv.Retries;

namespace RaftKv.Node.Routing;

/// <summary>One request as routing sees it: how to serve it here, and how to hand it to the leader.</summary>
/// <param name="Request">The typed request, as the leader receives it when forwarded.</param>
/// <param name="ServeHere">Serves it on this node within the deadline (refusing, typed, when this node cannot).</param>
/// <param name="FromAnswer">Reads the result out of the leader's answer.</param>
/// <param name="NeedsLeader">False when any member can serve it (a linearizable read asks the leader for an index itself).</param>
/// <param name="TimedOut">What a caller is told when the deadline passes: for a write, that its fate is unknown.</param>
internal readonly record struct RoutedCall<T>(
    ForwardedRequest Request,
    Func<RequestDeadline, Task<T>> ServeHere,
    Func<ForwardedResult, T> FromAnswer,
    bool NeedsLeader,
    string TimedOut);

/// <summary>
/// The one place that decides whether a request is served here or sent to the leader (rqlite's proxy is the model).
/// The choice is made up front from the loop's <see cref="LeaderView"/>, before anything is queued to the loop. When
/// the view was stale (the loop, or the leader forwarded to, refuses because leadership just moved) the refusal names
/// the new leader and the request goes straight there, once; while no leader is known it waits with
/// <see cref="ClusterWait"/>. All within one <see cref="RequestDeadline"/>.
/// </summary>
internal sealed class LeaderRouter(Func<LeaderView> view, TimeSpan requestTimeout, TimeProvider time)
{
    /// <summary>
    /// How long to pause between tries while the cluster is not ready for a request: no leader yet, another membership
    /// change in progress, a new member still catching up. Elections take a few hundred milliseconds, so the pauses
    /// start short and stay well under a second.
    /// </summary>
    public static Backoff ClusterWait { get; } = new(first: TimeSpan.FromMilliseconds(10), longest: TimeSpan.FromMilliseconds(250));

    private volatile ILeaderForwarder? _forwarder;

    /// <summary>
    /// How requests reach the leader; null: they are not forwarded, and a follower refuses them at once with
    /// <see cref="NodeErrorKind.NotLeader"/> naming the leader (an embedded node with forwarding off).
    /// </summary>
    public ILeaderForwarder? Forwarder
    {
        get => _forwarder;
        set => _forwarder = value;
    }

    /// <summary>
    /// Runs <paramref name="call"/>: here, or at the leader. With <paramref name="mayForward"/> false (a client that
    /// asked to be redirected) a follower waits for a leader to be known like any other, then refuses with
    /// <see cref="NodeErrorKind.NotLeader"/> naming it instead of forwarding.
    /// </summary>
    public async Task<T> RouteAsync<T>(RoutedCall<T> call, bool mayForward, CancellationToken cancellationToken)
    {
        using var deadline = RequestDeadline.Start(requestTimeout, time, cancellationToken);
        var forwarder = _forwarder;
        // Without a forwarder there is no routing: serve here or refuse, as an embedded node without forwarding does.
        var routes = forwarder is not null;
        var forwards = routes && mayForward;
        (string Id, string? Http)? named = null;
        var followedRefusal = false;
        NodeException? waitingFor = null;
        for (var retry = 0; ; retry++)
        {
            try
            {
                if (named is { } leader)
                {
                    named = null;
                    return await ForwardAsync(forwarder!, leader.Id, leader.Http, call, deadline).ConfigureAwait(false);
                }
                var seen = view();
                if (routes && seen.AwaitsElection)
                {
                    waitingFor = NoLeaderKnown;
                }
                else if (routes && call.NeedsLeader && seen.LeaderIsElsewhere)
                {
                    if (!forwards)
                        throw new NodeException(NodeErrorKind.NotLeader, $"not the leader; the leader is {seen.LeaderId}", seen.LeaderId, seen.LeaderHttpAddress);
                    return await ForwardAsync(forwarder!, seen.LeaderId!, seen.LeaderHttpAddress, call, deadline).ConfigureAwait(false);
                }
                else
                {
                    return await call.ServeHere(deadline).ConfigureAwait(false);
                }
            }
            catch (NodeException e) when (forwards && e.Kind == NodeErrorKind.NotLeader && e.LeaderId is not null && !followedRefusal)
            {
                // Leadership moved after the view was read: the refusal says where it went. Follow it once, at once.
                followedRefusal = true;
                named = (e.LeaderId, e.LeaderHttpAddress);
                retry--;
                continue;
            }
            catch (NodeException e) when (routes && (e.Kind == NodeErrorKind.NoLeader || (forwards && e.Kind == NodeErrorKind.NotLeader)))
            {
                // An election is under way (or the leader named is no longer it): wait for the view to settle.
                waitingFor = e;
            }
            catch (LeaderUnreachableException e)
            {
                waitingFor = new NodeException(NodeErrorKind.NoLeader, e.Message);
            }
            catch (OperationCanceledException) when (deadline.Passed && !cancellationToken.IsCancellationRequested)
            {
                throw new NodeException(NodeErrorKind.Timeout, call.TimedOut);
            }

            var pause = ClusterWait.Delay(retry);
            if (pause >= deadline.Remaining) throw GaveUp(waitingFor);
            try
            {
                await Task.Delay(pause, time, deadline.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (deadline.Passed && !cancellationToken.IsCancellationRequested)
            {
                throw GaveUp(waitingFor);
            }
        }
    }

    /// <summary>
    /// What a caller is told when the deadline passes while waiting for a leader: "no leader", since whatever node was
    /// last named leader turned out not to be it, and a retry later is the answer either way.
    /// </summary>
    private static NodeException GaveUp(NodeException waitingFor) => waitingFor.Kind == NodeErrorKind.NotLeader
        ? new NodeException(NodeErrorKind.NoLeader, "no leader could be reached: " + waitingFor.Message)
        : waitingFor;

    private static NodeException NoLeaderKnown => new(NodeErrorKind.NoLeader, "no leader is known; an election may be under way");

    private static async Task<T> ForwardAsync<T>(ILeaderForwarder forwarder, string leaderId, string? leaderHttpAddress, RoutedCall<T> call,
        RequestDeadline deadline)
    {
        // The leader gets what is left of this request's time, so it gives up when the caller here does.
        var request = call.Request with { Timeout = deadline.Remaining };
        byte[] answer;
        try
        {
            answer = await forwarder.ForwardAsync(leaderId, leaderHttpAddress, request.Encode(), deadline.Token).ConfigureAwait(false);
        }
        catch (IOException e) when (e is not LeaderUnreachableException && !deadline.Token.IsCancellationRequested)
        {
            // It may have reached the leader: a read can simply be asked again, a change may have been made.
            if (!call.NeedsLeader || call.Request.Op == ForwardedOp.Get) throw new LeaderUnreachableException($"could not reach the leader {leaderId}: {e.Message}");
            throw new NodeException(NodeErrorKind.Timeout,
                $"forwarding to the leader {leaderId} failed ({e.Message}); the request may or may not have been applied");
        }
        var result = ForwardedResult.Decode(answer);
        if (result.Error is not null) throw result.Error;
        return call.FromAnswer(result);
    }
}
