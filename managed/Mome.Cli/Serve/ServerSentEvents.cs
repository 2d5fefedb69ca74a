using Microsoft.AspNetCore.Http;
using System.Text.Json.Nodes;

namespace Mome.Cli.Serve;

/// <summary>OpenAI's streaming wire format: server-sent events <c>data: {json}</c>, each
/// flushed as it is written, ended by <c>data: [DONE]</c>.</summary>
public static class Events
{
    public static async Task StartAsync(HttpResponse response, JsonObject? first)
    {
        response.ContentType = "text/event-stream";
        response.Headers.CacheControl = "no-cache";
        await response.StartAsync();
        if (first is not null) await WriteAsync(response, first);
    }

    public static async Task WriteAsync(HttpResponse response, JsonObject data)
    {
        await response.WriteAsync("data: " + data.ToJsonString() + "\n\n");
        await response.Body.FlushAsync();
    }

    public static async Task EndAsync(HttpResponse response)
    {
        await response.WriteAsync("data: [DONE]\n\n");
        await response.Body.FlushAsync();
    }
}
