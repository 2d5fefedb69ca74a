using System.Text;
using System.Text.Json;

namespace Mome;

public sealed partial class MemoryBank
{
    /// <summary>The prompt its facts were tuned with ("{question}" marks the question), so that
    /// a question asked later (<c>mome ask</c>, a chat client) reaches the memorised answer;
    /// null when the bank was never tuned. Memory tuning sets it; Save and Load keep it in
    /// "&lt;bank&gt;.prompt.json" beside the bank file (the bank file's own metadata is the
    /// native format's, fixed).</summary>
    public string? PromptTemplate { get; set; }

    /// <summary>The prompt of <paramref name="question"/> in <see cref="PromptTemplate"/>, or
    /// null when the bank has none.</summary>
    public string? PromptOf(string question) =>
        PromptTemplate?.Replace(BankPromptFile.QuestionMarker, question, StringComparison.Ordinal);
}

/// <summary>The side file that keeps a bank's prompt template: a JSON object
/// <c>{"prompt_template": "..."}</c>, written crash-safely.</summary>
internal static class BankPromptFile
{
    public const string QuestionMarker = "{question}";

    public static string PathOf(string bankPath) => bankPath + ".prompt.json";

    public static void Write(string bankPath, string? template)
    {
        var path = PathOf(bankPath);
        if (template is null)
        {
            File.Delete(path);
            return;
        }
        var temp = path + ".tmp-" + Environment.ProcessId;
        File.WriteAllText(temp, JsonSerializer.Serialize(new Dictionary<string, string> { ["prompt_template"] = template }), new UTF8Encoding(false));
        File.Move(temp, path, overwrite: true);
    }

    /// <summary>The template kept beside <paramref name="bankPath"/>, or null when there is no side file.</summary>
    /// <exception cref="InvalidDataException">The side file is not what Write writes.</exception>
    public static string? Read(string bankPath)
    {
        var path = PathOf(bankPath);
        if (!File.Exists(path)) return null;
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(path));
            if (doc.RootElement.ValueKind == JsonValueKind.Object &&
                doc.RootElement.TryGetProperty("prompt_template", out var t) && t.ValueKind == JsonValueKind.String &&
                t.GetString()!.Contains(QuestionMarker, StringComparison.Ordinal))
                return t.GetString();
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException)
        {
            // InvalidOperationException: GetString of an escape that is no UTF-16 text ("\ud800").
        }
        throw new InvalidDataException($"{path}: not a bank prompt file (a JSON object whose \"prompt_template\" string holds {QuestionMarker})");
    }
}
