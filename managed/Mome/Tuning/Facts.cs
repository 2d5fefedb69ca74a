using System.Text;
using System.Text.Json;

namespace Mome;

/// <summary>One fact to memorise: the answer the model must give to the question.</summary>
public sealed record Fact(string Question, string Answer);

/// <summary>A facts file could not be used; <see cref="Problems"/> lists every bad line.</summary>
public sealed class FactsFormatException : Exception
{
    public FactsFormatException(string path, IReadOnlyList<string> problems)
        : base($"{path}: {problems.Count} problem(s):\n  " + string.Join("\n  ", problems.Take(20)) +
               (problems.Count > 20 ? $"\n  ... and {problems.Count - 20} more" : ""))
    {
        Problems = problems;
    }

    public IReadOnlyList<string> Problems { get; }
}

/// <summary>Facts as JSONL: one <c>{"question": ..., "answer": ...}</c> object per line (UTF-8).</summary>
public static class FactsFile
{
    /// <summary>
    /// Reads every line first and returns the facts only if all are valid: malformed lines,
    /// missing or empty fields and conflicting answers to one question are all reported
    /// together, with line numbers. A question repeated with the same answer is kept once.
    /// </summary>
    public static IReadOnlyList<Fact> Load(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (Directory.Exists(path)) throw new IOException($"{path}: is a directory, not a facts file");
        var problems = new List<string>();
        var facts = new List<Fact>();
        var firstLine = new Dictionary<string, (int Line, string Answer)>(StringComparer.Ordinal);
        var lineNumber = 0;
        using var reader = new StreamReader(path, new UTF8Encoding(false, throwOnInvalidBytes: true));
        while (true)
        {
            string? line;
            try
            {
                line = reader.ReadLine();
            }
            catch (DecoderFallbackException)
            {
                problems.Add($"line {lineNumber + 1}: not valid UTF-8");
                break;
            }
            if (line is null) break;
            lineNumber++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            var fact = Parse(line, lineNumber, problems);
            if (fact is null) continue;
            if (firstLine.TryGetValue(fact.Question, out var seen))
            {
                if (seen.Answer != fact.Answer)
                    problems.Add($"line {lineNumber}: the question of line {seen.Line} again, with another answer (conflict)");
                continue;
            }
            firstLine[fact.Question] = (lineNumber, fact.Answer);
            facts.Add(fact);
        }
        if (problems.Count > 0) throw new FactsFormatException(path, problems);
        if (facts.Count == 0) throw new FactsFormatException(path, ["no facts: the file has no non-empty lines"]);
        return facts;
    }

    public static void Save(string path, IEnumerable<Fact> facts)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var temp = path + ".tmp-" + Environment.ProcessId;
        using (var writer = new StreamWriter(temp, false, new UTF8Encoding(false)))
            foreach (var f in facts)
                writer.WriteLine(JsonSerializer.Serialize(new Dictionary<string, string> { ["question"] = f.Question, ["answer"] = f.Answer }));
        File.Move(temp, path, overwrite: true);
    }

    private static Fact? Parse(string line, int number, List<string> problems)
    {
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(line);
        }
        catch (JsonException e)
        {
            problems.Add($"line {number}: not JSON ({e.Message.Split('.')[0]})");
            return null;
        }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
            {
                problems.Add($"line {number}: not a JSON object");
                return null;
            }
            string? Field(string name)
            {
                if (!doc.RootElement.TryGetProperty(name, out var v) || v.ValueKind != JsonValueKind.String)
                {
                    problems.Add($"line {number}: \"{name}\" is missing or not a string");
                    return null;
                }
                var s = v.GetString()!;
                if (s.Trim().Length == 0)
                {
                    problems.Add($"line {number}: \"{name}\" is empty");
                    return null;
                }
                return s;
            }
            try
            {
                var question = Field("question");
                var answer = Field("answer");
                return question is null || answer is null ? null : new Fact(question, answer);
            }
            catch (InvalidOperationException)
            {
                // System.Text.Json unescapes names and strings lazily and throws this for "\ud800".
                problems.Add($"line {number}: a string escape that is no text (a lone surrogate such as \\ud800)");
                return null;
            }
        }
    }
}

/// <summary>Prompt lists (unrelated prompts, negatives): one prompt per line, blank lines
/// skipped; the two characters <c>\n</c> inside a line stand for a newline.</summary>
public static class PromptsFile
{
    public static IReadOnlyList<string> Load(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"prompts file {path} does not exist", path);
        // Blank after unescaping: a line of only "\n" is no prompt either.
        return File.ReadAllLines(path).Select(l => l.Replace("\\n", "\n", StringComparison.Ordinal)).Where(l => l.Trim().Length > 0).ToList();
    }

    public static void Save(string path, IEnumerable<string> prompts) =>
        File.WriteAllLines(path, prompts.Select(p => p.Replace("\n", "\\n", StringComparison.Ordinal)));
}
