using Microsoft.AspNetCore.Http;
using System.Text.Json.Nodes;

namespace Mome.Cli.Serve;

/// <summary>A request the server refuses, answered with OpenAI's error body
/// <c>{"error": {"message", "type", "param", "code"}}</c> and an HTTP status.</summary>
public sealed class OpenAiError(int status, string message, string? param = null, string? code = null,
    string type = "invalid_request_error") : Exception(message)
{
    public int Status { get; } = status;
    public string? Param { get; } = param;
    public string? Code { get; } = code;
    public string Type { get; } = type;

    public static OpenAiError BadRequest(string message, string? param = null, string code = "invalid_value") => new(400, message, param, code);

    public JsonObject Body() => new()
    {
        ["error"] = new JsonObject { ["message"] = Message, ["type"] = Type, ["param"] = Param, ["code"] = Code },
    };

    public async Task WriteAsync(HttpResponse response)
    {
        response.StatusCode = Status;
        response.ContentType = "application/json";
        await response.WriteAsync(Body().ToJsonString());
    }
}
