using System.Net;
using System.Net.Http.Headers;
using RaftKv.Node;

namespace RaftKv.Server.Tests;

/// <summary>Every error is JSON with the right status: 400, 404, 405, 413, 503 (+Retry-After), 504, 500.</summary>
public sealed class ErrorStatusTests
{
    [Theory]
    [InlineData("{\"a\":")]                 // truncated
    [InlineData("not json")]
    [InlineData("")]                        // no body
    [InlineData("{\"a\":\"1\"} {\"b\":\"2\"}")] // two values
    [InlineData("{\"a\":1}")]               // non-string value
    [InlineData("{\"a\":{\"b\":\"c\"}}")]   // nested object
    [InlineData("{\"a\":[\"x\"]}")]         // array value
    [InlineData("[{\"a\":\"b\"}]")]         // array body
    [InlineData("{\"\":\"v\"}")]            // empty key
    [InlineData("{\"a\\u0000b\":\"v\"}")]   // NUL: no URL can name it, so it could never be read
    [InlineData("{}")]                      // nothing to set
    [InlineData("{\"a\":null}")]
    public async Task Bad_set_bodies_are_400(string body)
    {
        await using var server = await RunningServer.StartAsync();
        var response = await server.Client.SendAsync(HttpMethod.Post, "/key", body);
        await response.AssertErrorAsync(HttpStatusCode.BadRequest);
        Assert.Empty(server.Node.Sets);
    }

    [Fact]
    public async Task Malformed_json_says_so()
    {
        await using var server = await RunningServer.StartAsync();
        var error = await (await server.Client.SendAsync(HttpMethod.Post, "/join", "{\"addr\":")).AssertErrorAsync(HttpStatusCode.BadRequest);
        Assert.StartsWith("malformed JSON", error);
        var shape = await (await server.Client.SendAsync(HttpMethod.Post, "/key", "{\"a\":true}")).AssertErrorAsync(HttpStatusCode.BadRequest);
        Assert.Equal("value of \"a\" must be a string, not a boolean", shape);
    }

    [Theory]
    [InlineData("/key", "{\"a\":\"\\ud800\"}")]              // a lone surrogate escape in a value
    [InlineData("/key", "{\"\\udc00x\":\"v\"}")]             // ... in a key
    [InlineData("/key", "{\"a\":\"\xff\"}")]                  // a byte that is not UTF-8 (sent as Latin-1)
    [InlineData("/join", "{\"id\":\"\\ud800\",\"addr\":\"h:1\"}")]
    [InlineData("/raft/transfer-leadership", "{\"id\":\"\xff\"}")]
    public async Task Text_that_is_not_unicode_is_400_not_500(string path, string body)
    {
        await using var server = await RunningServer.StartAsync();
        var bytes = System.Text.Encoding.Latin1.GetBytes(body);
        using var content = new ByteArrayContent(bytes);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        var error = await (await server.Client.PostAsync(path, content)).AssertErrorAsync(HttpStatusCode.BadRequest);
        Assert.StartsWith("malformed JSON", error);
        Assert.Empty(server.Node.Sets);
        Assert.Empty(server.Node.Joins);
        Assert.Empty(server.Node.Transfers);
    }

    [Theory]
    [InlineData("/key/")]
    [InlineData("/key")]
    [InlineData("/db/")]
    [InlineData("/key/?level=none")]
    public async Task Empty_path_key_is_400(string path)
    {
        await using var server = await RunningServer.StartAsync();
        Assert.Contains("empty", await (await server.Client.GetAsync(path)).AssertErrorAsync(HttpStatusCode.BadRequest));
    }

    [Theory]
    [InlineData("/key/%ff")]
    [InlineData("/db/a%zz")]
    public async Task Malformed_percent_encoding_in_a_path_key_is_400(string path)
    {
        await using var server = await RunningServer.StartAsync();
        // As sent by curl: HttpClient's Uri would re-escape the path before it left.
        var raw = new Uri("http://" + server.Address + path, new UriCreationOptions { DangerousDisablePathAndQueryCanonicalization = true });
        var error = await (await server.Client.GetAsync(raw)).AssertErrorAsync(HttpStatusCode.BadRequest);
        Assert.Contains("percent-encod", error);
        // The literal spelling was once the key used: it must not be what a DELETE removes.
        var literal = path[(path.IndexOf('/', 1) + 1)..];
        server.Node.Data[literal] = "kept";
        Assert.Equal(HttpStatusCode.BadRequest, (await server.Client.DeleteAsync(raw)).StatusCode);
        Assert.Equal("kept", server.Node.Data[literal]);
    }

    [Fact]
    public async Task Over_long_key_is_400()
    {
        await using var server = await RunningServer.StartAsync(options: new ServerOptions { MaxKeyBytes = 16 });
        var response = await server.Client.SendAsync(HttpMethod.Post, "/key", $"{{\"{new string('k', 17)}\":\"v\"}}");
        Assert.Contains("too long", await response.AssertErrorAsync(HttpStatusCode.BadRequest));
        Assert.Equal(HttpStatusCode.BadRequest, (await server.Client.GetAsync("/key/" + new string('k', 17))).StatusCode);
    }

    [Fact]
    public async Task Bad_read_level_is_400()
    {
        await using var server = await RunningServer.StartAsync();
        Assert.Contains("level", await (await server.Client.GetAsync("/key/a?level=eventual")).AssertErrorAsync(HttpStatusCode.BadRequest));
    }

    [Fact]
    public async Task Unknown_path_is_404_json()
    {
        await using var server = await RunningServer.StartAsync();
        Assert.Contains("/nope", await (await server.Client.GetAsync("/nope")).AssertErrorAsync(HttpStatusCode.NotFound));
    }

    [Theory]
    [InlineData("GET", "/join", "POST")]
    [InlineData("PUT", "/key", "DELETE, GET, POST")]
    [InlineData("POST", "/key/a", "DELETE, GET")]
    [InlineData("GET", "/hraftd/raft/remove", "DELETE, POST")]
    [InlineData("DELETE", "/status", "GET")]
    public async Task Wrong_method_is_405_with_allow(string method, string path, string allow)
    {
        await using var server = await RunningServer.StartAsync();
        var response = await server.Client.SendAsync(new HttpMethod(method), path, method is "GET" or "DELETE" ? null : "{}");
        await response.AssertErrorAsync(HttpStatusCode.MethodNotAllowed);
        var allowed = response.Content.Headers.Allow.Order(StringComparer.Ordinal);
        Assert.Equal(allow, string.Join(", ", allowed));
    }

    [Fact]
    public async Task Body_over_max_is_413_with_content_length()
    {
        await using var server = await RunningServer.StartAsync(options: new ServerOptions { MaxBodyBytes = 1024 });
        var body = $"{{\"k\":\"{new string('v', 64 * 1024)}\"}}";
        var response = await server.Client.SendAsync(HttpMethod.Post, "/key", body);
        Assert.Contains("limit is 1024", await response.AssertErrorAsync(HttpStatusCode.RequestEntityTooLarge));
        Assert.Empty(server.Node.Sets);

        // A body just under the limit is fine.
        var fits = await server.Client.SendAsync(HttpMethod.Post, "/key", $"{{\"k\":\"{new string('v', 1000)}\"}}");
        Assert.Equal(HttpStatusCode.OK, fits.StatusCode);
    }

    [Fact]
    public async Task Huge_body_with_expect_continue_is_refused_before_it_is_sent()
    {
        await using var server = await RunningServer.StartAsync(options: new ServerOptions { MaxBodyBytes = 1024 });
        // 512 KiB: even if the client gives up waiting for 100-continue and sends it, Kestrel can drain it.
        using var request = new HttpRequestMessage(HttpMethod.Post, "/db/k") { Content = new ByteArrayContent(new byte[512 << 10]) };
        request.Headers.ExpectContinue = true;
        var response = await server.Client.SendAsync(request);
        await response.AssertErrorAsync(HttpStatusCode.RequestEntityTooLarge);
    }

    [Fact]
    public async Task Body_over_max_is_413_when_chunked()
    {
        await using var server = await RunningServer.StartAsync(options: new ServerOptions { MaxBodyBytes = 1024 });
        using var content = new StreamContent(new MemoryStream(new byte[8 * 1024]));
        content.Headers.ContentType = new MediaTypeHeaderValue("text/plain");
        using var request = new HttpRequestMessage(HttpMethod.Post, "/db/k") { Content = content };
        request.Headers.TransferEncodingChunked = true;
        var response = await server.Client.SendAsync(request);
        await response.AssertErrorAsync(HttpStatusCode.RequestEntityTooLarge);
        Assert.Empty(server.Node.Sets);
    }

    public static TheoryData<NodeErrorKind, HttpStatusCode, bool, string> NodeErrors => new()
    {
        { NodeErrorKind.Busy, HttpStatusCode.ServiceUnavailable, true, "busy" },
        { NodeErrorKind.NotApplied, HttpStatusCode.ServiceUnavailable, true, "safe to retry" },
        { NodeErrorKind.Unavailable, HttpStatusCode.ServiceUnavailable, true, "unavailable" },
        { NodeErrorKind.Timeout, HttpStatusCode.GatewayTimeout, false, "may or may not have been applied" },
        { NodeErrorKind.BadRequest, HttpStatusCode.BadRequest, false, "boom" },
        { NodeErrorKind.NotFound, HttpStatusCode.NotFound, false, "boom" },
        { NodeErrorKind.TooLarge, HttpStatusCode.RequestEntityTooLarge, false, "boom" },
    };

    [Theory]
    [MemberData(nameof(NodeErrors))]
    public async Task Node_errors_map_to_statuses(NodeErrorKind kind, HttpStatusCode status, bool retryAfter, string says)
    {
        var node = new FakeKvNode { Fail = _ => new NodeException(kind, "boom") };
        await using var server = await RunningServer.StartAsync(node);
        var response = await server.Client.SendAsync(HttpMethod.Post, "/key", """{"a":"b"}""");
        Assert.Contains(says, await response.AssertErrorAsync(status));
        Assert.Equal(retryAfter, response.Headers.RetryAfter is not null);
    }

    [Fact]
    public async Task Read_timeout_is_504_without_the_write_warning()
    {
        var node = new FakeKvNode { Fail = _ => new NodeException(NodeErrorKind.Timeout, "read index not confirmed") };
        await using var server = await RunningServer.StartAsync(node);
        var error = await (await server.Client.GetAsync("/key/a")).AssertErrorAsync(HttpStatusCode.GatewayTimeout);
        Assert.DoesNotContain("applied", error);
    }

    [Fact]
    public async Task Request_timeout_bounds_a_hung_node_call()
    {
        var node = new FakeKvNode { Gate = token => Task.Delay(Timeout.Infinite, token) };
        await using var server = await RunningServer.StartAsync(node, new ServerOptions { RequestTimeout = TimeSpan.FromMilliseconds(200) });
        var response = await server.Client.SendAsync(HttpMethod.Post, "/key", """{"a":"b"}""");
        Assert.Contains("may or may not", await response.AssertErrorAsync(HttpStatusCode.GatewayTimeout));
    }

    [Fact]
    public async Task Unexpected_exceptions_are_500_json_without_stack_and_logged()
    {
        var logs = new LogCapture();
        var node = new FakeKvNode { Fail = _ => new InvalidOperationException("wires crossed") };
        await using var server = await RunningServer.StartAsync(node, logging: logs);
        var response = await server.Client.GetAsync("/key/a");
        Assert.Equal("internal error: wires crossed", await response.AssertErrorAsync(HttpStatusCode.InternalServerError));
        Assert.Contains(logs.Messages, m => m.Contains("Unhandled error") && m.Contains("/key/a"));
    }
}
