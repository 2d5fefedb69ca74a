using Microsoft.AspNetCore.Http;
using System.Text.Json;

namespace Mome.Cli.Serve;

/// <summary>Reads the fields of a JSON request body, refusing each wrong one with an
/// <see cref="OpenAiError"/> that names it. Fields no reader asks for are ignored, as
/// OpenAI's clients send many optional ones.</summary>
public sealed class RequestFields
{
    private readonly JsonElement _root;

    private RequestFields(JsonElement root) => _root = root;

    /// <summary>The body as a JSON object (400 when it is not valid JSON or not an object).</summary>
    public static async Task<(RequestFields Fields, JsonDocument Document)> ReadAsync(HttpRequest request, CancellationToken cancellationToken)
    {
        JsonDocument doc;
        try
        {
            doc = await JsonDocument.ParseAsync(request.Body, cancellationToken: cancellationToken);
        }
        catch (JsonException e)
        {
            throw OpenAiError.BadRequest($"the request body is not valid JSON: {e.Message}", code: "invalid_json");
        }
        var kind = doc.RootElement.ValueKind;
        if (kind != JsonValueKind.Object)
        {
            doc.Dispose();
            throw OpenAiError.BadRequest($"the request body must be a JSON object, not {kind.ToString().ToLowerInvariant()}", code: "invalid_json");
        }
        return (new RequestFields(doc.RootElement), doc);
    }

    public JsonElement? Get(string name) =>
        _root.TryGetProperty(name, out var v) && v.ValueKind != JsonValueKind.Null ? v : null;

    public string? String(string name)
    {
        if (Get(name) is not { } v) return null;
        return v.ValueKind == JsonValueKind.String ? v.GetString() : throw WrongType(name, "a string", v);
    }

    public bool Bool(string name, bool absent)
    {
        if (Get(name) is not { } v) return absent;
        return v.ValueKind is JsonValueKind.True or JsonValueKind.False ? v.GetBoolean() : throw WrongType(name, "a boolean", v);
    }

    public int? Integer(string name, int min, int max)
    {
        if (Get(name) is not { } v) return null;
        if (v.ValueKind != JsonValueKind.Number || !v.TryGetInt64(out var n)) throw WrongType(name, "an integer", v);
        if (n < min || n > max) throw OpenAiError.BadRequest($"'{name}' is {n}; it must be between {min} and {max}", name);
        return (int)n;
    }

    public long? Long(string name)
    {
        if (Get(name) is not { } v) return null;
        return v.ValueKind == JsonValueKind.Number && v.TryGetInt64(out var n) ? n : throw WrongType(name, "an integer", v);
    }

    public float? Number(string name, double min, double max, bool minExclusive = false)
    {
        if (Get(name) is not { } v) return null;
        if (v.ValueKind != JsonValueKind.Number) throw WrongType(name, "a number", v);
        var x = v.GetDouble();
        if (x > max || x < min || (minExclusive && x == min))
            throw OpenAiError.BadRequest($"'{name}' is {x}; it must be {(minExclusive ? "above" : "at least")} {min} and at most {max}", name);
        return (float)x;
    }

    /// <summary>"stop": a string or an array of at most four strings.</summary>
    public IReadOnlyList<string> Stops(string name)
    {
        if (Get(name) is not { } v) return [];
        if (v.ValueKind == JsonValueKind.String) return [v.GetString()!];
        if (v.ValueKind != JsonValueKind.Array || v.EnumerateArray().Any(e => e.ValueKind != JsonValueKind.String))
            throw WrongType(name, "a string or an array of strings", v);
        var stops = v.EnumerateArray().Select(e => e.GetString()!).ToList();
        if (stops.Count > 4) throw OpenAiError.BadRequest($"'{name}' holds {stops.Count} sequences; at most 4 are allowed", name);
        return stops;
    }

    public static OpenAiError WrongType(string name, string expected, JsonElement got) =>
        OpenAiError.BadRequest($"'{name}' must be {expected}, not {got.ValueKind.ToString().ToLowerInvariant()}", name, "invalid_type");
}
