using System.Net;
using System.Text;
using System.Text.Json;

namespace RaftKv.EndToEnd.Tests;

/// <summary>A <see cref="RaftkvdCluster"/> with the hraftd-dialect calls the end-to-end scenarios make.</summary>
internal sealed class E2eCluster() : RaftkvdCluster("raftkv-e2e")
{
    /// <summary>Runs a scenario on a new cluster; on failure the nodes' logs are attached to the error.</summary>
    public static async Task Scenario(Func<E2eCluster, Task> body)
    {
        using var c = new E2eCluster();
        try
        {
            await body(c);
        }
        catch (Exception e)
        {
            throw new Exception(e.Message + "\n\nnode logs:\n" + c.Logs(), e);
        }
    }

    public async Task<HttpResponseMessage> SetAsync(RaftkvdProcess node, string key, string value) =>
        await Http.PostAsync(new Uri(node.BaseUri, "/key"), new StringContent(JsonSerializer.Serialize(new Dictionary<string, string> { [key] = value }), Encoding.UTF8, "application/json"));

    public async Task<string?> GetAsync(RaftkvdProcess node, string key, string level = "linearizable")
    {
        using var r = await Http.GetAsync(new Uri(node.BaseUri, $"/key/{Uri.EscapeDataString(key)}?level={level}"));
        if (r.StatusCode == HttpStatusCode.NotFound) return null;
        r.EnsureSuccessStatusCode();
        using var doc = JsonDocument.Parse(await r.Content.ReadAsStringAsync());
        return doc.RootElement.GetProperty(key).GetString();
    }
}
