using Microsoft.AspNetCore.Http;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.AI;
using Mome.AI;

namespace Mome.Cli.Serve;

/// <summary>The handlers of /v1/models, /v1/chat/completions and /v1/completions.</summary>
public sealed class OpenAiEndpoints(MomeChatClient chat, BatchedGenerator generator, int maxRequests, int maxTokens)
{
    private readonly long _created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
    private int _requests;

    public string ModelId => chat.ModelId;

    public JsonObject Models() => new()
    {
        ["object"] = "list",
        ["data"] = new JsonArray(new JsonObject { ["id"] = ModelId, ["object"] = "model", ["created"] = _created, ["owned_by"] = "mome" }),
    };

    public async Task ChatCompletionsAsync(HttpContext context)
    {
        var (fields, doc) = await RequestFields.ReadAsync(context.Request, context.RequestAborted);
        using (doc)
        {
            var request = Common(fields, "max_completion_tokens", "max_tokens");
            var messages = Messages(fields);
            var options = new ChatOptions
            {
                Temperature = request.Temperature, TopP = request.TopP, Seed = request.Seed, MaxOutputTokens = request.MaxTokens,
                StopSequences = request.Stops.ToList(),
            };
            await Limited(context, async () =>
            {
                var updates = chat.GetStreamingResponseAsync(messages, options, context.RequestAborted);
                var (e, any) = await Begin(updates.GetAsyncEnumerator(context.RequestAborted), "messages");
                await using var _ = e;
                var id = "chatcmpl-" + Guid.NewGuid().ToString("N");
                var created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
                JsonObject Chunk(JsonObject delta, string? finish) => new()
                {
                    ["id"] = id, ["object"] = "chat.completion.chunk", ["created"] = created, ["model"] = ModelId,
                    ["choices"] = new JsonArray(new JsonObject { ["index"] = 0, ["delta"] = delta, ["finish_reason"] = finish }),
                };
                if (request.Stream) await Events.StartAsync(context.Response, Chunk(new JsonObject { ["role"] = "assistant", ["content"] = "" }, null));
                var text = new System.Text.StringBuilder();
                string finish = "stop";
                UsageDetails? usage = null;
                while (any)
                {
                    var update = e.Current;
                    any = await e.MoveNextAsync();
                    if (update.FinishReason is { } f) finish = f == ChatFinishReason.Length ? "length" : "stop";
                    usage ??= update.Contents.OfType<UsageContent>().FirstOrDefault()?.Details;
                    if (string.IsNullOrEmpty(update.Text)) continue;
                    text.Append(update.Text);
                    if (request.Stream) await Events.WriteAsync(context.Response, Chunk(new JsonObject { ["content"] = update.Text }, null));
                }
                var usageJson = Usage(usage);
                if (request.Stream)
                {
                    await Events.WriteAsync(context.Response, Chunk(new JsonObject(), finish));
                    if (request.IncludeUsage)
                        await Events.WriteAsync(context.Response, new JsonObject
                        {
                            ["id"] = id, ["object"] = "chat.completion.chunk", ["created"] = created, ["model"] = ModelId,
                            ["choices"] = new JsonArray(), ["usage"] = usageJson,
                        });
                    await Events.EndAsync(context.Response);
                    return;
                }
                await Json(context.Response, new JsonObject
                {
                    ["id"] = id, ["object"] = "chat.completion", ["created"] = created, ["model"] = ModelId,
                    ["choices"] = new JsonArray(new JsonObject
                    {
                        ["index"] = 0, ["message"] = new JsonObject { ["role"] = "assistant", ["content"] = text.ToString() },
                        ["logprobs"] = null, ["finish_reason"] = finish,
                    }),
                    ["usage"] = usageJson,
                });
            });
        }
    }

    public async Task CompletionsAsync(HttpContext context)
    {
        var (fields, doc) = await RequestFields.ReadAsync(context.Request, context.RequestAborted);
        using (doc)
        {
            var request = Common(fields, "max_tokens");
            var prompt = fields.Get("prompt") switch
            {
                null => throw OpenAiError.BadRequest("'prompt' is required", "prompt", "missing_required_parameter"),
                { ValueKind: JsonValueKind.String } p => p.GetString()!,
                { ValueKind: JsonValueKind.Array } p when p.GetArrayLength() == 1 && p[0].ValueKind == JsonValueKind.String => p[0].GetString()!,
                var p => throw RequestFields.WrongType("prompt", "a string (or an array of one string)", p.Value),
            };
            if (prompt.Length == 0) throw OpenAiError.BadRequest("'prompt' is empty", "prompt");
            var tokens = generator.Tokenizer.Encode(prompt);
            var options = new GenerationOptions
            {
                Temperature = request.Temperature ?? 0, TopP = request.TopP ?? 1, Seed = request.Seed is { } s ? unchecked((int)s) : 42,
                MaxTokens = Math.Min(request.MaxTokens ?? 16, Math.Max(0, generator.ContextLength - tokens.Length)),
            };
            var completion = new TextCompletion(generator, tokens, options, request.Stops);
            await Limited(context, async () =>
            {
                var (e, any) = await Begin(completion.StreamAsync(context.RequestAborted).GetAsyncEnumerator(context.RequestAborted), "prompt");
                await using var _ = e;
                var id = "cmpl-" + Guid.NewGuid().ToString("N");
                var created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
                JsonObject Body(string text, string? finish) => new()
                {
                    ["id"] = id, ["object"] = "text_completion", ["created"] = created, ["model"] = ModelId,
                    ["choices"] = new JsonArray(new JsonObject { ["text"] = text, ["index"] = 0, ["logprobs"] = null, ["finish_reason"] = finish }),
                };
                var text = new System.Text.StringBuilder();
                if (request.Stream) await Events.StartAsync(context.Response, null);
                while (any)
                {
                    text.Append(e.Current);
                    if (request.Stream) await Events.WriteAsync(context.Response, Body(e.Current, null));
                    any = await e.MoveNextAsync();
                }
                var finish = completion.FinishReason == FinishReason.Length ? "length" : "stop";
                var usage = new JsonObject
                {
                    ["prompt_tokens"] = completion.PromptTokens, ["completion_tokens"] = completion.CompletionTokens,
                    ["total_tokens"] = completion.PromptTokens + completion.CompletionTokens,
                };
                if (request.Stream)
                {
                    var last = Body("", finish);
                    if (request.IncludeUsage) last["usage"] = usage;
                    await Events.WriteAsync(context.Response, last);
                    await Events.EndAsync(context.Response);
                    return;
                }
                var body = Body(text.ToString(), finish);
                body["usage"] = usage;
                await Json(context.Response, body);
            });
        }
    }

    private sealed record CommonFields(bool Stream, bool IncludeUsage, float? Temperature, float? TopP, long? Seed, int? MaxTokens,
        IReadOnlyList<string> Stops);

    // The fields both endpoints share; max tokens under the first of maxTokenNames present.
    private CommonFields Common(RequestFields fields, params string[] maxTokenNames)
    {
        if (fields.String("model") is { } model && model != ModelId)
            throw new OpenAiError(404, $"the model '{model}' does not exist; this server serves '{ModelId}'", "model", "model_not_found");
        if (fields.Integer("n", 1, 1) is not (null or 1)) throw OpenAiError.BadRequest("'n' must be 1", "n");
        var includeUsage = false;
        if (fields.Get("stream_options") is { } so)
        {
            if (so.ValueKind != JsonValueKind.Object) throw RequestFields.WrongType("stream_options", "an object", so);
            if (so.TryGetProperty("include_usage", out var iu))
                includeUsage = iu.ValueKind is JsonValueKind.True or JsonValueKind.False
                    ? iu.GetBoolean()
                    : throw RequestFields.WrongType("stream_options.include_usage", "a boolean", iu);
        }
        int? max = null;
        foreach (var name in maxTokenNames)
            max ??= fields.Integer(name, 0, maxTokens);
        return new CommonFields(fields.Bool("stream", false), includeUsage, fields.Number("temperature", 0, 2), fields.Number("top_p", 0, 1, minExclusive: true),
            fields.Long("seed"), max, fields.Stops("stop"));
    }

    private static List<ChatMessage> Messages(RequestFields fields)
    {
        if (fields.Get("messages") is not { } list) throw OpenAiError.BadRequest("'messages' is required", "messages", "missing_required_parameter");
        if (list.ValueKind != JsonValueKind.Array) throw RequestFields.WrongType("messages", "an array", list);
        if (list.GetArrayLength() == 0) throw OpenAiError.BadRequest("'messages' is empty", "messages");
        var messages = new List<ChatMessage>();
        var i = 0;
        foreach (var m in list.EnumerateArray())
        {
            var at = $"messages[{i++}]";
            if (m.ValueKind != JsonValueKind.Object) throw RequestFields.WrongType(at, "an object", m);
            var role = m.TryGetProperty("role", out var r) && r.ValueKind == JsonValueKind.String ? r.GetString()! : throw OpenAiError.BadRequest($"'{at}.role' must be a string", $"{at}.role", "invalid_type");
            var chatRole = role switch
            {
                "system" or "developer" => ChatRole.System,
                "user" => ChatRole.User,
                "assistant" => ChatRole.Assistant,
                _ => throw OpenAiError.BadRequest($"'{at}.role' is '{role}'; Mome takes system, developer, user and assistant messages", $"{at}.role"),
            };
            messages.Add(new ChatMessage(chatRole, Content(m, at)));
        }
        return messages;
    }

    // A string, or an array of {"type": "text", "text": ...} parts.
    private static string Content(JsonElement message, string at)
    {
        if (!message.TryGetProperty("content", out var c) || c.ValueKind == JsonValueKind.Null) return "";
        if (c.ValueKind == JsonValueKind.String) return c.GetString()!;
        if (c.ValueKind != JsonValueKind.Array) throw RequestFields.WrongType($"{at}.content", "a string or an array of text parts", c);
        var text = new System.Text.StringBuilder();
        foreach (var part in c.EnumerateArray())
        {
            if (part.ValueKind != JsonValueKind.Object || !part.TryGetProperty("type", out var type) || type.ValueKind != JsonValueKind.String)
                throw OpenAiError.BadRequest($"'{at}.content' parts must be objects with a \"type\"", $"{at}.content", "invalid_type");
            if (type.GetString() != "text" || !part.TryGetProperty("text", out var t) || t.ValueKind != JsonValueKind.String)
                throw OpenAiError.BadRequest($"'{at}.content' holds a '{type.GetString()}' part; Mome takes text parts only", $"{at}.content");
            text.Append(t.GetString());
        }
        return text.ToString();
    }

    // At most maxRequests at once (running plus waiting for a sequence); 429 beyond that.
    private async Task Limited(HttpContext context, Func<Task> body)
    {
        if (Interlocked.Increment(ref _requests) > maxRequests)
        {
            Interlocked.Decrement(ref _requests);
            throw new OpenAiError(429, $"the server is busy: {maxRequests} requests are running or waiting; retry later", type: "rate_limit_error", code: "server_busy");
        }
        try
        {
            await body();
        }
        finally
        {
            Interlocked.Decrement(ref _requests);
        }
    }

    // Moves to the first element before anything is sent, so that a prompt the generator
    // refuses still gets a 400 with an error body.
    private static async Task<(IAsyncEnumerator<T> Enumerator, bool Any)> Begin<T>(IAsyncEnumerator<T> e, string promptParam)
    {
        try
        {
            return (e, await e.MoveNextAsync());
        }
        catch (MomeException x) when (x.Code == MomeErrorCode.OutOfRange)
        {
            await e.DisposeAsync();
            throw OpenAiError.BadRequest(x.Message, promptParam, "context_length_exceeded");
        }
        catch (ArgumentException x)
        {
            await e.DisposeAsync();
            throw OpenAiError.BadRequest(x.Message);
        }
    }

    private static JsonObject Usage(UsageDetails? usage) => new()
    {
        ["prompt_tokens"] = usage?.InputTokenCount ?? 0, ["completion_tokens"] = usage?.OutputTokenCount ?? 0,
        ["total_tokens"] = usage?.TotalTokenCount ?? 0,
    };

    private static async Task Json(HttpResponse response, JsonObject body)
    {
        response.ContentType = "application/json";
        await response.WriteAsync(body.ToJsonString());
    }
}
