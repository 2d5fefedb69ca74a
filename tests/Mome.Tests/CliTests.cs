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

    private static (int Code, string Out, string Err) Run(params string[] args)
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
}
