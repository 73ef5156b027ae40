using System.Net;
using System.Text;
using System.Text.Json;

namespace RaftKv.EndToEnd.Tests;

/// <summary>Bad input gets a status code and a JSON error, never a crash or a half-applied write.</summary>
public sealed class ErrorTests
{
    private static async Task AssertError(HttpResponseMessage r, HttpStatusCode expected)
    {
        Assert.Equal(expected, r.StatusCode);
        var body = await r.Content.ReadAsStringAsync();
        using var doc = JsonDocument.Parse(body);
        Assert.False(string.IsNullOrWhiteSpace(doc.RootElement.GetProperty("error").GetString()), body);
    }

    [Fact]
    public async Task MalformedRequests_GetClearErrors_AndChangeNothing()
    {
        using var c = new E2eCluster();
        var n = c.Start("node0", extra: ["--max-body", "1024"]);
        try
        {
            n = await c.WaitReadyAsync(n);
            Uri U(string path) => new(n.BaseUri, path);
            StringContent Json(string s) => new(s, Encoding.UTF8, "application/json");
            await AssertError(await c.Http.PostAsync(U("/key"), Json("{not json")), HttpStatusCode.BadRequest);
            await AssertError(await c.Http.PostAsync(U("/key"), Json("[1,2]")), HttpStatusCode.BadRequest);
            await AssertError(await c.Http.PostAsync(U("/key"), Json("{\"a\":1}")), HttpStatusCode.BadRequest);
            await AssertError(await c.Http.PostAsync(U("/key"), Json("{\"\":\"x\"}")), HttpStatusCode.BadRequest);
            // Half-valid body: nothing of it is applied.
            await AssertError(await c.Http.PostAsync(U("/key"), Json("{\"good\":\"1\",\"bad\":2}")), HttpStatusCode.BadRequest);
            Assert.Null(await c.GetAsync(n, "good"));
            await AssertError(await c.Http.GetAsync(U("/key/missing")), HttpStatusCode.NotFound);
            await AssertError(await c.Http.GetAsync(U("/key/x?level=bogus")), HttpStatusCode.BadRequest);
            await AssertError(await c.Http.PutAsync(U("/key"), Json("{}")), HttpStatusCode.MethodNotAllowed);
            await AssertError(await c.Http.PostAsync(U("/key"), Json("{\"big\":\"" + new string('x', 4096) + "\"}")), HttpStatusCode.RequestEntityTooLarge);
            await AssertError(await c.Http.PostAsync(U("/join"), Json("{\"id\":\"x\"}")), HttpStatusCode.BadRequest);
            // Still healthy after all that.
            using var ok = await c.SetAsync(n, "fine", "yes");
            Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
            Assert.False(n.HasExited);
        }
        catch (Exception e)
        {
            throw new Exception(e.Message + "\n" + c.Logs(), e);
        }
    }

    [Fact]
    public async Task BadFlagsOrDataDirectory_ExitWithCode2AndOneLine()
    {
        var file = Path.GetTempFileName();
        try
        {
            foreach (var args in new[] { new[] { "--no-such-flag", "/tmp/x" }, new[] { "-haddr", "nonsense", "/tmp/x" }, new[] { file }, new[] { "--max-body", "200MiB", "/tmp/x" } })
            {
                var psi = new System.Diagnostics.ProcessStartInfo("dotnet") { RedirectStandardError = true, RedirectStandardOutput = true };
                psi.ArgumentList.Add(RaftkvdProcess.ServerDll);
                foreach (var a in args) psi.ArgumentList.Add(a);
                using var p = System.Diagnostics.Process.Start(psi)!;
                var stderr = await p.StandardError.ReadToEndAsync();
                await p.StandardOutput.ReadToEndAsync();
                if (!p.WaitForExit(20_000)) p.Kill(true);
                Assert.Equal(2, p.ExitCode);
                Assert.False(string.IsNullOrWhiteSpace(stderr));
                Assert.DoesNotContain("   at ", stderr);
            }
        }
        finally
        {
            File.Delete(file);
        }
    }
}
