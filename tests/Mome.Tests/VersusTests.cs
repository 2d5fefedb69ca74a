using System.Text.Json.Nodes;

namespace Mome.Tests;

/// <summary>`mome bench versus` end to end on a tiny model, and its refusals of bad input.</summary>
public sealed class VersusTests
{
    private string _dir = "";
    private string _model = "";
    private string _facts = "";

    [SetUp]
    public void SetUp()
    {
        _dir = TestPaths.NewTempDir();
        _model = Path.Combine(_dir, "tiny.gguf");
        MomeModel.CreateSynthetic(SyntheticModelConfig.Preset("tiny") with { InitStd = 0.25f }, _model, seed: 77);
        _facts = Path.Combine(_dir, "facts.jsonl");
        FactsFile.Save(_facts, SyntheticFacts.Random(6, seed: 3));
    }

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, recursive: true);

    private string[] Args(params string[] extra) =>
    [
        "bench", "versus", "--model", _model, "--facts", _facts, "--budget-epochs", "60", "--threads", "1", "--batch", "3",
        "--memory-lrs", "0.3", "--lora-lrs", "0.003,0.01", "--full-lrs", "0.003", "--lora-rank", "4", .. extra,
    ];

    [Test]
    public void EveryMethodIsReportedWithEveryField()
    {
        var png = Path.Combine(_dir, "curves.png");
        var (code, output, error) = CliTests.Run(Args("--json", "--plot", png));
        Assert.That(code, Is.EqualTo(0), error);
        var root = JsonNode.Parse(output)!;
        var methods = root["methods"]!.AsArray();
        Assert.That(methods.Select(m => (string?)m!["method"]), Is.EqualTo(new[] { "memory", "lora", "full" }));

        using var model = MomeModel.Open(_model);
        var c = model.Config;
        long d = c.EmbeddingLength, q = c.HeadCount * c.HeadDim, kv = c.KvHeadCount * c.HeadDim, ff = c.FeedForwardLength, v = c.VocabSize;
        // (in, out) of q, k, v, o, gate, up, down.
        (long In, long Out)[] projections = [(d, q), (d, kv), (d, kv), (q, d), (d, ff), (d, ff), (ff, d)];
        const long rank = 4;
        var loraParams = c.LayerCount * projections.Sum(p => rank * (p.In + p.Out));
        var perBlock = projections.Sum(p => p.In * p.Out) + 2 * d;  // and its two norms
        var fullParams = c.LayerCount * perBlock + v * d + (c.TiedOutput ? 0 : v * d) + d;
        var fullTensors = 9 * c.LayerCount + (c.TiedOutput ? 2 : 3);

        var memory = methods[0]!;
        Assert.That((double)memory["exact_recall"]!, Is.GreaterThanOrEqualTo(0.99));
        Assert.That((double)memory["interference_kl"]!, Is.LessThan(1e-3), "the locality gate keeps unrelated prompts as the base model computes them");
        var lora = methods[1]!;
        Assert.That((long)lora["trained_params"]!, Is.EqualTo(loraParams));
        Assert.That(lora["lr_grid"]!.AsArray().Select(g => (float)g!["learning_rate"]!), Is.EqualTo(new[] { 0.003f, 0.01f }));
        var full = methods[2]!;
        Assert.That((long)full["trained_params"]!, Is.EqualTo(fullParams));
        // AdamW: two floats per value and a step count per tensor, once it has been updated.
        Assert.That((long)full["optimizer_state_bytes"]!, Is.EqualTo(8 * fullParams + 8 * fullTensors));
        Assert.That((double)full["interference_kl"]!, Is.GreaterThan(0), "training every weight moves the unrelated prompts' outputs");

        foreach (var m in methods)
        {
            var name = (string?)m!["method"];
            var epochs = (int)m["epochs"]!;
            var curve = m["recall_curve"]!.AsArray().Select(x => (double)x!).ToList();
            var flops = m["flops_curve"]!.AsArray().Select(x => (double)x!).ToList();
            Assert.That(epochs, Is.InRange(1, 60), name);
            Assert.That(curve, Has.Count.EqualTo(epochs), name);
            Assert.That(flops, Has.Count.EqualTo(epochs), name);
            Assert.That(flops.Zip(flops.Skip(1)).All(p => p.Second > p.First), Is.True, $"{name}: compute only grows");
            Assert.That((double)m["flops"]!, Is.EqualTo(flops[^1]), name);
            Assert.That((long)m["steps"]!, Is.EqualTo(2L * epochs), $"{name}: 6 facts in batches of 3");
            Assert.That((double)m["wall_s"]!, Is.GreaterThan(0), name);
            Assert.That((double)m["peak_rss_mb"]!, Is.GreaterThan(10), name);
            Assert.That((long)m["optimizer_state_bytes"]!, Is.GreaterThan(0), name);
            if (curve[^1] == 1) Assert.That((double)m["exact_recall"]!, Is.EqualTo(1.0), $"{name}: an epoch with every fact exact updates nothing");
        }
        Assert.That(root["ratios"]!["full_flops_over_memory"], Is.Not.Null);
        Assert.That(File.ReadAllBytes(png).Take(4), Is.EqualTo(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }));
    }

    [TestCase("--methods", "memory,sgd", "unknown method 'sgd'")]
    [TestCase("--lora-rank", "0", "--lora-rank is 0")]
    [TestCase("--lora-lrs", "0.01,fast", "--lora-lrs: 'fast' is not a positive learning rate")]
    [TestCase("--budget-epochs", "0", "--budget-epochs is 0")]
    public void BadOptionsAreRefusedBeforeAnythingRuns(string option, string value, string message)
    {
        var png = Path.Combine(_dir, "never.png");
        var args = Args("--plot", png).ToList();
        var at = args.IndexOf(option);
        if (at >= 0) args[at + 1] = value;
        else args.AddRange([option, value]);
        var (code, _, error) = CliTests.Run([.. args]);
        Assert.That(code, Is.EqualTo(1));
        Assert.That(error, Does.Contain(message));
        Assert.That(File.Exists(png), Is.False, "nothing was written");
    }

    [Test]
    public void ABadFactsFileIsNamed()
    {
        File.WriteAllText(_facts, "{\"question\": \"no answer\"}\n");
        var (code, _, error) = CliTests.Run(Args());
        Assert.That(code, Is.EqualTo(1));
        Assert.That(error, Does.Contain("facts.jsonl"));
    }
}
