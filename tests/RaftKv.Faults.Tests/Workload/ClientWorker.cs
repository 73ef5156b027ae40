using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;

namespace RaftKv.Faults.Tests.Workload;

/// <summary>What the workers do: which keys, how often they write, and how reads are sent.</summary>
public sealed record WorkloadOptions(int Keys = 5, int MaxKeysPerWrite = 3, double WriteShare = 0.5, string ReadLevel = "linearizable")
{
    public IReadOnlyList<string> KeyNames => [.. Enumerable.Range(0, Keys).Select(i => "k" + i)];
}

/// <summary>
/// One client: writes (one to <see cref="WorkloadOptions.MaxKeysPerWrite"/> keys in one request, each value unique to
/// the write so a read names it) and reads, one at a time, each to a random node, each recorded with its invocation
/// and completion times and what came of it. Outcomes follow the server's documented contract: 200 is done; 4xx and
/// 503 (refused, "not applied, safe to retry") and a refused connection mean nothing happened; a timeout, 504, 502,
/// any other 5xx or a connection broken mid-request leave a write's fate unknown.
/// </summary>
public sealed class ClientWorker(int id, History history, Func<IReadOnlyList<(string Name, Uri Uri)>> nodes, WorkloadOptions options, Random random) : IDisposable
{
    /// <summary>The client id of the reads made after healing, whose values are the keys' final values.</summary>
    public const int FinalReader = -1;

    /// <summary>Longer than the nodes' request timeout, so the server's own 504 normally comes first.</summary>
    public static readonly TimeSpan RequestTimeout = TimeSpan.FromSeconds(3);

    private readonly HttpClient _http = new(new SocketsHttpHandler
    {
        ConnectTimeout = TimeSpan.FromSeconds(1),
        UseProxy = false,
        // A node killed and started again: do not reuse a connection to the process that died.
        PooledConnectionIdleTimeout = TimeSpan.FromSeconds(2),
    })
    { Timeout = Timeout.InfiniteTimeSpan };

    private int _sequence;

    /// <summary>Runs until <paramref name="stop"/>; the operation in flight finishes (or times out) first.</summary>
    public async Task RunAsync(CancellationToken stop)
    {
        while (!stop.IsCancellationRequested)
        {
            var targets = nodes();
            var (name, uri) = targets[random.Next(targets.Count)];
            if (random.NextDouble() < options.WriteShare) await WriteAsync(name, uri);
            else await ReadAsync(name, uri, options.KeyNames[random.Next(options.Keys)], options.ReadLevel);
        }
    }

    public void Dispose() => _http.Dispose();

    private async Task WriteAsync(string node, Uri baseUri)
    {
        var count = random.Next(1, options.MaxKeysPerWrite + 1);
        var keys = options.KeyNames.OrderBy(_ => random.Next()).Take(count).Order(StringComparer.Ordinal).ToList();
        var value = $"c{id}.{++_sequence}";
        var pairs = keys.ToDictionary(k => k, k => (string?)value);
        var invoke = history.Now();
        OpOutcome outcome;
        string detail;
        try
        {
            using var cts = new CancellationTokenSource(RequestTimeout);
            using var body = new StringContent(JsonSerializer.Serialize(pairs), Encoding.UTF8, "application/json");
            using var r = await _http.PostAsync(new Uri(baseUri, "/key"), body, cts.Token);
            var status = (int)r.StatusCode;
            outcome = status == 200 ? OpOutcome.Ok
                : status is >= 400 and < 500 or 503 ? OpOutcome.Failed
                : OpOutcome.Unknown;
            detail = status.ToString(System.Globalization.CultureInfo.InvariantCulture);
        }
        catch (Exception e) when (IsRefused(e))
        {
            (outcome, detail) = (OpOutcome.Failed, "connection refused");
        }
        catch (Exception e) when (e is HttpRequestException or OperationCanceledException or IOException)
        {
            (outcome, detail) = (OpOutcome.Unknown, e is OperationCanceledException ? "client timeout" : e.Message);
        }
        history.Add(new HistoryOp(0, id, OpKind.Write, pairs, invoke, history.Now(), outcome, node, detail));
    }

    /// <summary>Reads <paramref name="key"/> at <paramref name="level"/> and records it (only answered reads count for the checker).</summary>
    public async Task<(bool Answered, string? Value)> ReadAsync(string node, Uri baseUri, string key, string level, bool record = true)
    {
        var invoke = history.Now();
        OpOutcome outcome;
        string? value = null;
        string detail;
        try
        {
            using var cts = new CancellationTokenSource(RequestTimeout);
            using var r = await _http.GetAsync(new Uri(baseUri, $"/key/{Uri.EscapeDataString(key)}?level={level}"), cts.Token);
            detail = ((int)r.StatusCode).ToString(System.Globalization.CultureInfo.InvariantCulture);
            if (r.StatusCode == HttpStatusCode.OK)
            {
                using var doc = JsonDocument.Parse(await r.Content.ReadAsStringAsync(cts.Token));
                value = doc.RootElement.GetProperty(key).GetString();
                outcome = OpOutcome.Ok;
            }
            else
            {
                // 404 is an answer: the key is missing. Anything else tells nothing about the key.
                outcome = r.StatusCode == HttpStatusCode.NotFound ? OpOutcome.Ok : OpOutcome.Unknown;
            }
        }
        catch (Exception e) when (e is HttpRequestException or OperationCanceledException or IOException or JsonException)
        {
            (outcome, detail) = (OpOutcome.Unknown, e is OperationCanceledException ? "client timeout" : e.Message);
        }
        if (record) history.Add(new HistoryOp(0, id, OpKind.Read, new Dictionary<string, string?> { [key] = value }, invoke, history.Now(), outcome, node, detail));
        return (outcome == OpOutcome.Ok, value);
    }

    /// <summary>The connection was refused: the request never reached a server.</summary>
    private static bool IsRefused(Exception e) =>
        e is HttpRequestException { InnerException: SocketException { SocketErrorCode: SocketError.ConnectionRefused } };
}
