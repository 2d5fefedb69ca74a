using LLama;
using LLama.Common;
using LLama.Native;
using Mome.Cli;

namespace Mome.Tests;

/// <summary>Generation: greedy decoding equals llama.cpp's greedy decoding, as tokens and as
/// llama.cpp's detokenized text; seeded sampling is
/// reproducible; `mome logits` prints llama.cpp's logits; `mome generate` streams text.</summary>
[NonParallelizable]
public sealed class GenerationTests
{
    private string _dir = "";
    private string _path = "";

    [SetUp]
    public void SetUp()
    {
        _dir = TestPaths.NewTempDir();
        _path = Path.Combine(_dir, "m.gguf");
        MomeModel.CreateSynthetic(SyntheticModelConfig.Preset("tiny") with { InitStd = 0.25f, ContextLength = 256 }, _path, seed: 21);
    }

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, recursive: true);

    [Test]
    public void GreedyTokensEqualLlamaCppGreedyDecoding()
    {
        using var model = MomeModel.Open(_path);
        using var generator = new TextGenerator(model, new SessionOptions { ContextLength = 128 });
        var prompt = generator.Tokenizer.Encode("The capital of the country is");
        var ours = generator.GenerateTokens(prompt, new GenerationOptions { MaxTokens = 24, StopAtEndOfGeneration = false }).ToArray();
        var (expectedPrompt, theirs, _) = LlamaCppGreedy("The capital of the country is", 24);
        Assert.That(prompt, Is.EqualTo(expectedPrompt), "same prompt tokens");
        Assert.That(ours, Is.EqualTo(theirs));
    }

    /// <summary>The text Mome generates (its own detokenizer, streamed and whole) equals the
    /// text llama.cpp's detokenizer makes of llama.cpp's own greedy tokens.</summary>
    [TestCase("The capital of the country is")]
    [TestCase("the old man")]
    public async Task GreedyTextEqualsLlamaCppGreedyText(string prompt)
    {
        using var model = MomeModel.Open(_path);
        using var generator = new TextGenerator(model, new SessionOptions { ContextLength = 128 });
        var options = new GenerationOptions { MaxTokens = 24, StopAtEndOfGeneration = false };
        var (_, _, theirs) = LlamaCppGreedy(prompt, 24);
        Assert.That(theirs, Is.Not.Empty);
        Assert.That(generator.Generate(prompt, options), Is.EqualTo(theirs));
        var pieces = new List<string>();
        await foreach (var piece in generator.GenerateAsync(prompt, options)) pieces.Add(piece);
        Assert.That(string.Concat(pieces), Is.EqualTo(theirs), "streamed");
    }

    // llama.cpp's greedy decoding of `steps` tokens after the prompt (exact settings: F32 KV
    // cache, no flash attention, 1 thread): its prompt tokens, the tokens and their text as
    // llama.cpp's own detokenizer writes it.
    private (int[] Prompt, List<int> Tokens, string Text) LlamaCppGreedy(string text, int steps)
    {
        var parameters = new ModelParams(_path)
        {
            ContextSize = 128, BatchSize = 128, GpuLayerCount = 0, Threads = 1, FlashAttention = false,
            TypeK = GGMLType.GGML_TYPE_F32, TypeV = GGMLType.GGML_TYPE_F32,
        };
        using var weights = LLamaWeights.LoadFromFile(parameters);
        using var context = weights.CreateContext(parameters);
        var prompt = context.Tokenize(text, addBos: true).Select(t => (int)t).ToArray();
        var batch = new LLamaBatch();
        for (var i = 0; i < prompt.Length; i++) batch.Add(prompt[i], i, LLamaSeqId.Zero, i == prompt.Length - 1);
        var tokens = new List<int>();
        var decoder = new StreamingTokenDecoder(context);
        for (var step = 0; step < steps; step++)
        {
            Assert.That(context.NativeHandle.Decode(batch), Is.EqualTo(DecodeResult.Ok));
            var logits = context.NativeHandle.GetLogitsIth(batch.TokenCount - 1);
            var next = 0;
            for (var v = 1; v < logits.Length; v++)
                if (logits[v] > logits[next]) next = v;
            tokens.Add(next);
            decoder.Add(next);
            batch.Clear();
            batch.Add(next, prompt.Length + step, LLamaSeqId.Zero, true);
        }
        return (prompt, tokens, decoder.Read());
    }

    [Test]
    public void SeededSamplingIsReproducibleAndSeedsDiffer()
    {
        using var model = MomeModel.Open(_path);
        using var generator = new TextGenerator(model, new SessionOptions { ContextLength = 128 });
        var options = new GenerationOptions { MaxTokens = 20, Temperature = 1.5f, TopK = 50, TopP = 0.95f, Seed = 7, StopAtEndOfGeneration = false };
        var prompt = generator.Tokenizer.Encode("Once upon a time");
        var a = generator.GenerateTokens(prompt, options).ToArray();
        var b = generator.GenerateTokens(prompt, options).ToArray();
        var c = generator.GenerateTokens(prompt, options with { Seed = 8 }).ToArray();
        Assert.That(a, Has.Length.EqualTo(20));
        Assert.That(b, Is.EqualTo(a));
        Assert.That(c, Is.Not.EqualTo(a));
    }

    [Test]
    public void TopKOneIsGreedy()
    {
        using var model = MomeModel.Open(_path);
        using var generator = new TextGenerator(model, new SessionOptions { ContextLength = 64 });
        var prompt = generator.Tokenizer.Encode("hello world");
        var greedy = generator.GenerateTokens(prompt, new GenerationOptions { MaxTokens = 10, StopAtEndOfGeneration = false }).ToArray();
        var topOne = generator.GenerateTokens(prompt, new GenerationOptions { MaxTokens = 10, Temperature = 2, TopK = 1, StopAtEndOfGeneration = false }).ToArray();
        Assert.That(topOne, Is.EqualTo(greedy));
    }

    [Test]
    public async Task StreamingConcatenatesToTheWholeText()
    {
        using var model = MomeModel.Open(_path);
        using var generator = new TextGenerator(model, new SessionOptions { ContextLength = 64 });
        var options = new GenerationOptions { MaxTokens = 16, StopAtEndOfGeneration = false };
        var pieces = new List<string>();
        await foreach (var piece in generator.GenerateAsync("the old man", options)) pieces.Add(piece);
        Assert.That(string.Concat(pieces), Is.EqualTo(generator.Generate("the old man", options)));
        Assert.That(pieces, Is.Not.Empty);
    }

    [Test]
    public void PromptLongerThanTheContextIsAClearError()
    {
        using var model = MomeModel.Open(_path);
        using var generator = new TextGenerator(model, new SessionOptions { ContextLength = 8 });
        var e = Assert.Throws<MomeException>(() => generator.Generate(string.Join(' ', Enumerable.Repeat("word", 20))))!;
        Assert.That(e.Message, Does.Contain("the context holds 8"));
        Assert.Throws<ArgumentOutOfRangeException>(() => new Sampler(new SamplingOptions { TopP = 0 }));
    }

    [Test]
    public void LogitsCommandPrintsLlamaCppLogits()
    {
        var output = new StringWriter();
        var error = new StringWriter();
        Assert.That(MomeCli.Run(["logits", "--model", _path, "--tokens", "1,5,9,300", "--json"], output, error), Is.EqualTo(0), error.ToString());
        var json = System.Text.Json.Nodes.JsonNode.Parse(output.ToString())!;
        Assert.That(json.AsObject().Select(p => p.Key), Is.EqualTo(new[] { "tokens", "logits" }));
        Assert.That(json["tokens"]!.AsArray().Select(t => (int)t!), Is.EqualTo(new[] { 1, 5, 9, 300 }));
        var expected = ForwardOracleTests.LlamaCppLogits(_path, [1, 5, 9, 300]);
        var rows = json["logits"]!.AsArray();
        Assert.That(rows, Has.Count.EqualTo(4));
        for (var t = 0; t < 4; t++)
        {
            var row = rows[t]!.AsArray().Select(v => (float)v!).ToArray();
            Assert.That(row, Has.Length.EqualTo(512));
            Assert.That(row.Zip(expected[t]).Max(p => Math.Abs(p.First - p.Second)), Is.LessThan(1e-4));
        }
        Assert.That(MomeCli.Run(["logits", "--model", _path, "--tokens", "1,x"], output, error), Is.EqualTo(1));
        Assert.That(error.ToString(), Does.Contain("'x' is not a token id"));
    }

    [Test]
    public void GenerateCommandStreamsText()
    {
        var output = new StringWriter();
        var error = new StringWriter();
        Assert.That(MomeCli.Run(["generate", "--model", _path, "--prompt", "the old man", "--max-tokens", "8"], output, error),
            Is.EqualTo(0), error.ToString());
        using var model = MomeModel.Open(_path);
        using var generator = new TextGenerator(model);
        Assert.That(output.ToString().TrimEnd('\n'), Is.EqualTo(generator.Generate("the old man", new GenerationOptions { MaxTokens = 8 })));
    }
}
