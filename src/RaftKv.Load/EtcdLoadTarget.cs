using System.Text;
using System.Text.Json;
using RaftKv.Client;

namespace RaftKv.Load;

/// <summary>
/// etcd v3 through its JSON gateway: <c>POST /v3/kv/put</c> and <c>POST /v3/kv/range</c> with base64 keys and values,
/// sent to the leader's client URL (found with <c>/v3/maintenance/status</c> and <c>/v3/cluster/member/list</c>).
/// Ranges are linearizable for levels linearizable and strong, serializable (local) for none and weak.
/// </summary>
public sealed class EtcdLoadTarget(IReadOnlyList<string> endpoints) : LoadTarget(endpoints)
{
    /// <inheritdoc/>
    public override string Name => "etcd";

    /// <inheritdoc/>
    public override async Task<RequestResult> WriteAsync(HttpClient http, string key, string value, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(http);
        var body = "{\"key\":\"" + B64(key) + "\",\"value\":\"" + B64(value) + "\"}";
        using var response = await PostAsync(http, new Uri(Leader, "/v3/kv/put"), body, cancellationToken).ConfigureAwait(false);
        return Result(response);
    }

    /// <inheritdoc/>
    public override async Task<RequestResult> ReadAsync(HttpClient http, string key, ReadLevel level, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(http);
        var body = level is ReadLevel.None or ReadLevel.Weak
            ? "{\"key\":\"" + B64(key) + "\",\"serializable\":true}"
            : "{\"key\":\"" + B64(key) + "\"}";
        using var response = await PostAsync(http, new Uri(Leader, "/v3/kv/range"), body, cancellationToken).ConfigureAwait(false);
        if (!response.IsSuccessStatusCode)
        {
            return Result(response);
        }
        // An empty range leaves out "kvs".
        var bytes = await response.Content.ReadAsByteArrayAsync(cancellationToken).ConfigureAwait(false);
        return new RequestResult((int)response.StatusCode, Success: true, Miss: bytes.AsSpan().IndexOf("\"kvs\""u8) < 0);
    }

    /// <inheritdoc/>
    protected override async Task<Uri?> DiscoverLeaderAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        using var http = new HttpClient { Timeout = timeout };
        Exception? last = null;
        foreach (var endpoint in Endpoints)
        {
            try
            {
                using var status = await PostJsonAsync(http, new Uri(endpoint, "/v3/maintenance/status"), cancellationToken).ConfigureAwait(false);
                if (!status.RootElement.TryGetProperty("leader", out var leaderId) || leaderId.GetString() is not { Length: > 0 } id || id == "0")
                {
                    continue;
                }
                var self = status.RootElement.GetProperty("header").GetProperty("member_id").GetString();
                if (self == id)
                {
                    return endpoint;
                }
                using var members = await PostJsonAsync(http, new Uri(endpoint, "/v3/cluster/member/list"), cancellationToken).ConfigureAwait(false);
                foreach (var member in members.RootElement.GetProperty("members").EnumerateArray())
                {
                    if (member.GetProperty("ID").GetString() == id && member.TryGetProperty("clientURLs", out var urls) && urls.GetArrayLength() > 0)
                    {
                        return ToBaseUri(urls[0].GetString()!);
                    }
                }
                return endpoint;
            }
            catch (Exception e) when (e is HttpRequestException or JsonException or KeyNotFoundException or InvalidOperationException or ArgumentException
                                          || (e is OperationCanceledException && !cancellationToken.IsCancellationRequested))
            {
                last = e;
            }
        }
        return last is null ? null : throw new HttpRequestException(last.Message, last);
    }

    private static string B64(string text) => Convert.ToBase64String(Encoding.UTF8.GetBytes(text));

    private static async Task<HttpResponseMessage> PostAsync(HttpClient http, Uri uri, string body, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, uri) { Content = new ByteArrayContent(Encoding.UTF8.GetBytes(body)) };
        request.Content.Headers.TryAddWithoutValidation("Content-Type", "application/json");
        return await http.SendAsync(request, cancellationToken).ConfigureAwait(false);
    }

    private static async Task<JsonDocument> PostJsonAsync(HttpClient http, Uri uri, CancellationToken cancellationToken)
    {
        using var response = await PostAsync(http, uri, "{}", cancellationToken).ConfigureAwait(false);
        response.EnsureSuccessStatusCode();
        var text = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
        return JsonDocument.Parse(text);
    }
}
