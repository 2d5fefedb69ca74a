using System.Text.Json.Nodes;
using Mome.Cli;

namespace Mome.Tests;

/// <summary>`mome model create` and `mome model info`, run in-process.</summary>
public sealed class CliTests
{
    private string _dir = "";

    [SetUp]
    public void SetUp() => _dir = TestPaths.NewTempDir();

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, recursive: true);

    internal static (int Code, string Out, string Err) Run(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var code = MomeCli.Run(args, output, error);
        return (code, output.ToString(), error.ToString());
    }

    [Test]
    public void CreateThenInfoJsonDescribesTheModel()
    {
        var path = Path.Combine(_dir, "m.gguf");
        var create = Run("model", "create", "--preset", "tiny", "--out", path, "--seed", "5", "--weight-type", "f16");
        Assert.That(create.Code, Is.EqualTo(0), create.Err);
        Assert.That(create.Out, Does.Contain("parameters"));

        var info = Run("model", "info", path, "--json");
        Assert.That(info.Code, Is.EqualTo(0), info.Err);
        var json = JsonNode.Parse(info.Out)!;
        var preset = SyntheticModelConfig.Preset("tiny");
        Assert.That((string?)json["architecture"], Is.EqualTo("llama"));
        Assert.That((long)json["config"]!["n_embd"]!, Is.EqualTo(preset.EmbeddingLength));
        Assert.That((long)json["config"]!["n_head_kv"]!, Is.EqualTo(preset.KvHeadCount));
        Assert.That((string?)json["config"]!["weight_type"], Is.EqualTo("F16"));
        Assert.That((ulong)json["metadata"]!["tokenizer.ggml.tokens"]!["count"]!, Is.EqualTo((ulong)preset.VocabSize));
        Assert.That(json["metadata"]!["tokenizer.ggml.tokens"]!["value"]!.AsArray(), Has.Count.EqualTo(8), "arrays are cut to --max-array");
        Assert.That(json["tensors"]!.AsArray().Select(t => (string?)t!["name"]), Does.Contain("blk.1.ffn_down.weight"));
    }

    [Test]
    public void InfoTableForPeople()
    {
        var path = Path.Combine(_dir, "m.gguf");
        Assert.That(Run("model", "create", "--out", path).Code, Is.EqualTo(0));
        var info = Run("model", "info", path);
        Assert.That(info.Code, Is.EqualTo(0), info.Err);
        Assert.That(info.Out, Does.Contain("general.architecture").And.Contain("token_embd.weight").And.Contain("heads"));
    }

    [Test]
    public void InfoOnABrokenFileIsOneClearLine()
    {
        var path = Path.Combine(_dir, "bad.gguf");
        File.WriteAllText(path, "not a model");
        var info = Run("model", "info", path);
        Assert.That(info.Code, Is.EqualTo(1));
        Assert.That(info.Err, Does.StartWith("mome: ").And.Contain(path).And.Contain("not a GGUF file"));
    }

    [Test]
    public void UnknownPresetIsRejectedByTheParser()
    {
        var result = Run("model", "create", "--preset", "huge", "--out", Path.Combine(_dir, "x.gguf"));
        Assert.That(result.Code, Is.Not.EqualTo(0));
        Assert.That(File.Exists(Path.Combine(_dir, "x.gguf")), Is.False);
    }

    [Test]
    public void DevicesListsTheCpu()
    {
        var result = Run("devices");
        Assert.That(result.Code, Is.EqualTo(0), result.Err);
        Assert.That(result.Out, Does.Contain("Cpu"));
    }

    [Test]
    public void TuneThenEvalReportsTheThreeAxesAsNamedFields()
    {
        var model = Path.Combine(_dir, "m.gguf");
        Assert.That(Run("model", "create", "--preset", "tiny", "--init-std", "0.25", "--seed", "9", "--out", model).Code, Is.EqualTo(0));
        var all = SyntheticFacts.Random(40, seed: 3);
        var facts = Path.Combine(_dir, "facts.jsonl");
        var unseen = Path.Combine(_dir, "unseen.jsonl");
        var paraphrases = Path.Combine(_dir, "paraphrases.jsonl");
        var unrelated = Path.Combine(_dir, "unrelated.txt");
        var negatives = Path.Combine(_dir, "negatives.txt");
        FactsFile.Save(facts, all.Take(30));
        FactsFile.Save(unseen, all.Skip(30));
        FactsFile.Save(paraphrases, all.Take(30).Select(f => f with { Question = "Tell me the code of " + f.Question }));
        File.WriteAllText(unrelated, "Q: Where is the station?\\nA:\nThe cat sat on the\n");
        File.WriteAllText(negatives, "Q: What is the access code of the front door?\\nA:\n");
        var bank = Path.Combine(_dir, "b.mome");
        var tune = Run("tune", "--model", model, "--facts", facts, "--out", bank, "--experts", "4096", "--negatives", negatives);
        Assert.That(tune.Code, Is.EqualTo(0), tune.Err);
        Assert.That(tune.Out, Does.Contain("Locality gate: threshold").And.Contain("1 given"));

        var eval = Run("eval", "--model", model, "--memory", bank, "--facts", facts, "--unrelated", unrelated, "--unseen", unseen,
            "--paraphrases", paraphrases, "--json");
        Assert.That(eval.Code, Is.EqualTo(0), eval.Err);
        var json = System.Text.Json.Nodes.JsonNode.Parse(eval.Out)!.AsObject();
        foreach (var field in new[] { "exact_recall", "token_accuracy", "interference_kl", "interference_kl_max", "locality_top1",
                     "unseen_false_recall", "unseen_kl", "generality", "gate_threshold" })
            Assert.That(json[field]?.GetValueKind(), Is.EqualTo(System.Text.Json.JsonValueKind.Number), field);
        Assert.That((double)json["exact_recall"]!, Is.EqualTo(1.0));
        Assert.That((double)json["interference_kl"]!, Is.EqualTo(0.0));
        Assert.That((int)json["unrelated_prompts"]!, Is.EqualTo(2), "the escaped newline joined its line");
        Assert.That((int)json["unseen_questions"]!, Is.EqualTo(10));

        var off = Run("eval", "--model", model, "--memory", bank, "--facts", facts, "--unrelated", unrelated, "--gate", "off", "--json");
        Assert.That(off.Code, Is.EqualTo(0), off.Err);
        var ungated = System.Text.Json.Nodes.JsonNode.Parse(off.Out)!.AsObject();
        Assert.That(ungated["gate_threshold"], Is.Null);
        Assert.That((double)ungated["interference_kl"]!, Is.GreaterThan(0.0), "without the gate the bank changes the unrelated prompts");
        Assert.That(Run("tune", "--model", model, "--facts", facts, "--out", bank, "--gate", "1.5").Err, Does.Contain("--gate must be"));

        // Two memory layers: both in the saved bank, every fact recalled through a session.
        var two = Path.Combine(_dir, "two.mome");
        var layered = Run("tune", "--model", model, "--facts", facts, "--out", two, "--experts", "4096", "--layers", "0,1");
        Assert.That(layered.Code, Is.EqualTo(0), layered.Err);
        var info = Run("memory", "info", two, "--model", model, "--json");
        Assert.That(info.Code, Is.EqualTo(0), info.Err);
        Assert.That(System.Text.Json.Nodes.JsonNode.Parse(info.Out)!["layers"]!.AsArray().Select(l => (int)l!), Is.EqualTo(new[] { 0, 1 }));
        var twoEval = Run("eval", "--model", model, "--memory", two, "--facts", facts, "--json");
        Assert.That(twoEval.Code, Is.EqualTo(0), twoEval.Err);
        Assert.That((double)System.Text.Json.Nodes.JsonNode.Parse(twoEval.Out)!["exact_recall"]!, Is.EqualTo(1.0));
        var reversed = Run("tune", "--model", model, "--facts", facts, "--out", Path.Combine(_dir, "rev.mome"), "--layers", "1,0");
        Assert.That(reversed.Code, Is.Not.EqualTo(0));
        Assert.That(reversed.Err, Does.Contain("lowest layer first"));
    }
}
