using System.Net.Http.Headers;
using System.Text.Json;
using RaftKv.Raft;
using RaftKv.Retries;
using RaftKv.Server.Http;

namespace RaftKv.Server.Hosting;

/// <summary>
/// Asks an existing cluster to add this node: <c>POST /join</c> to each address in turn, round after round with growing
/// pauses (the one <see cref="Backoff"/> policy, between <see cref="FirstPause"/> and <see cref="LongestPause"/>), until
/// one accepts. Any member will do: followers forward the join to the leader.
/// </summary>
public sealed class ClusterJoiner(HttpClient client, ILogger logger)
{
    /// <summary>Ceiling of the first pause between rounds.</summary>
    public TimeSpan FirstPause { get; init; } = TimeSpan.FromMilliseconds(200);

    /// <summary>Ceiling of every pause between rounds.</summary>
    public TimeSpan LongestPause { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>Time allowed for one join request.</summary>
    public TimeSpan AttemptTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Joins; returns the address that accepted. Throws when cancelled, or <see cref="JoinRefusedException"/> when a
    /// member answers 400 (retrying a join the cluster refuses as such cannot succeed).
    /// </summary>
    public async Task<string> JoinAsync(
        IReadOnlyList<string> addresses, string id, string raftAddress, string httpAddress, CancellationToken cancellationToken,
        ulong incarnation = 0, string clusterId = "")
    {
        if (addresses.Count == 0)
        {
            throw new ArgumentException("no join addresses", nameof(addresses));
        }
        var body = JoinBody(id, raftAddress, httpAddress, incarnation, clusterId);
        var pauses = new Backoff(first: FirstPause, longest: LongestPause);
        for (var round = 1; ; round++)
        {
            foreach (var address in addresses)
            {
                using var attempt = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                attempt.CancelAfter(AttemptTimeout);
                try
                {
                    using var content = new ByteArrayContent(body);
                    content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
                    using var response = await client.PostAsync($"http://{address}/join", content, attempt.Token);
                    if (response.IsSuccessStatusCode)
                    {
                        logger.LogInformation("Joined the cluster through {Address} as {Id}", address, id);
                        return address;
                    }
                    var text = await response.Content.ReadAsStringAsync(attempt.Token);
                    if (response.StatusCode is System.Net.HttpStatusCode.BadRequest or System.Net.HttpStatusCode.Conflict)
                    {
                        // The cluster refuses this join as such (a bad address, another node's address, a node of
                        // another cluster): asking again cannot help. Said once, loudly; the node stays up, not a member, until restarted with fixed flags.
                        logger.LogError("Join through {Address} refused: {Body}. Not retrying: fix the flags and restart this node", address, text);
                        throw new JoinRefusedException(text);
                    }
                    logger.LogWarning("Join through {Address} did not succeed yet (round {Round}): {Status} {Body}", address, round, (int)response.StatusCode, text);
                }
                catch (Exception e) when (e is HttpRequestException || (e is OperationCanceledException && !cancellationToken.IsCancellationRequested))
                {
                    logger.LogWarning("Join through {Address} failed (round {Round}): {Error}", address, round,
                        e is OperationCanceledException ? "timed out" : e.Message);
                }
            }
            await Task.Delay(pauses.Delay(round - 1), cancellationToken);
        }
    }

    /// <summary>
    /// <c>{"id","addr","http_addr","incarnation","cluster_id"}</c>: hraftd's join body plus the HTTP address followers
    /// need to forward to us, and who we are: our incarnation (so a node that lost its data replaces its old self) and
    /// the cluster we already belong to, if any (so another cluster refuses us instead of taking us in).
    /// </summary>
    internal static byte[] JoinBody(string id, string raftAddress, string httpAddress, ulong incarnation = 0, string clusterId = "")
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer, HttpReply.WriterOptions))
        {
            w.WriteStartObject();
            w.WriteString("id"u8, id);
            w.WriteString("addr"u8, raftAddress);
            w.WriteString("http_addr"u8, httpAddress);
            if (incarnation != 0) w.WriteString("incarnation"u8, Incarnations.Format(incarnation));
            if (clusterId.Length > 0) w.WriteString("cluster_id"u8, clusterId);
            w.WriteEndObject();
        }
        return buffer.ToArray();
    }
}

/// <summary>A member refused the join with 400: the request itself is wrong, so it is not retried.</summary>
public sealed class JoinRefusedException(string message) : Exception(message);
