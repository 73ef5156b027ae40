using System.Net;
using System.Text;

namespace RaftKv.Server.Tests;

/// <summary>goraft/raftd's raw-value API: POST /db/{key} with the value as body, GET /db/{key} answering it raw.</summary>
public sealed class RaftdApiTests
{
    [Theory]
    [InlineData("")]
    [InlineData("/hraftd")]
    public async Task Raw_value_round_trip(string prefix)
    {
        await using var server = await RunningServer.StartAsync();
        var set = await server.Client.PostAsync(prefix + "/db/my_key", new StringContent("FOO {not json}", Encoding.UTF8, "text/plain"));
        Assert.Equal(HttpStatusCode.OK, set.StatusCode);
        Assert.Equal("FOO {not json}", server.Node.Data["my_key"]);

        var get = await server.Client.GetAsync(prefix + "/db/my_key");
        Assert.Equal(HttpStatusCode.OK, get.StatusCode);
        Assert.Equal("text/plain", get.Content.Headers.ContentType?.MediaType);
        Assert.Equal("FOO {not json}", await get.Content.ReadAsStringAsync());

        Assert.Equal(HttpStatusCode.OK, (await server.Client.DeleteAsync(prefix + "/db/my_key")).StatusCode);
        await (await server.Client.GetAsync(prefix + "/db/my_key")).AssertErrorAsync(HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task Empty_body_sets_the_empty_string()
    {
        await using var server = await RunningServer.StartAsync();
        Assert.Equal(HttpStatusCode.OK, (await server.Client.PostAsync("/db/k", new ByteArrayContent([]))).StatusCode);
        Assert.Equal("", server.Node.Data["k"]);
    }

    [Fact]
    public async Task Invalid_utf8_value_is_400()
    {
        await using var server = await RunningServer.StartAsync();
        var response = await server.Client.PostAsync("/db/k", new ByteArrayContent([0xff, 0xfe, 0x41]));
        await response.AssertErrorAsync(HttpStatusCode.BadRequest);
    }

    [Fact]
    public async Task Level_applies_to_raw_reads()
    {
        await using var server = await RunningServer.StartAsync();
        server.Node.Data["k"] = "v";
        Assert.Equal("v", await server.Client.GetStringAsync("/db/k?level=none"));
        Assert.Equal(RaftKv.Node.ReadLevel.None, Assert.Single(server.Node.Reads));
        await (await server.Client.GetAsync("/db/k?level=eventual")).AssertErrorAsync(HttpStatusCode.BadRequest);
    }
}
