using System.Diagnostics;
using System.Text.Json.Nodes;

namespace Mome.Tests;

/// <summary>`mome logits --engine/--accelerator`, MOME_ENGINE, and the automatic fallback to the
/// ILGPU engine when the native library does not load (in a child process, whose native load fails).</summary>
public sealed class EngineCliTests
{
    private string _dir = "";
    private string _model = "";
    private const string Tokens = "1,7,3,9,12,5";

    [OneTimeSetUp]
    public void OneTimeSetUp()
    {
        _dir = TestPaths.NewTempDir();
        _model = Path.Combine(_dir, "m.gguf");
        MomeModel.CreateSynthetic(SyntheticModelConfig.Preset("tiny") with { InitStd = 0.25f }, _model, seed: 8);
    }

    [OneTimeTearDown]
    public void OneTimeTearDown() => Directory.Delete(_dir, recursive: true);

    private static float[] Logits(string json) =>
        JsonNode.Parse(json)!["logits"]!.AsArray().SelectMany(row => row!.AsArray().Select(v => (float)v!)).ToArray();

    private float[] NativeLogits()
    {
        var run = CliTests.Run("logits", "--model", _model, "--tokens", Tokens, "--engine", "native");
        Assert.That(run.Code, Is.EqualTo(0), run.Err);
        return Logits(run.Out);
    }

    private static (int Code, string Out, string Err) RunChild(Dictionary<string, string> environment, params string[] args)
    {
        var start = new ProcessStartInfo("dotnet", [Path.Combine(AppContext.BaseDirectory, "Mome.Cli.dll"), .. args])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (var (key, value) in environment) start.Environment[key] = value;
        using var child = Process.Start(start)!;
        var output = child.StandardOutput.ReadToEndAsync();
        var error = child.StandardError.ReadToEnd();
        Assert.That(child.WaitForExit(TimeSpan.FromMinutes(2)), "the CLI finished");
        return (child.ExitCode, output.Result, error);
    }

    [Test]
    public void IlgpuLogitsMatchNative()
    {
        var run = CliTests.Run("logits", "--model", _model, "--tokens", Tokens, "--engine", "ilgpu", "--accelerator", "cpu");
        Assert.That(run.Code, Is.EqualTo(0), run.Err);
        Assert.That(run.Err, Is.Empty, "an explicit engine prints no notice");
        var native = NativeLogits();
        Assert.That(native.Max(Math.Abs), Is.GreaterThan(1.0));
        Assert.That(ForwardOracleTests.MaxAbsDiff(Logits(run.Out), native), Is.LessThanOrEqualTo(1e-4));
    }

    [TestCase("--engine", "fast", "mome: --engine: 'fast' is not an engine (native or ilgpu)")]
    [TestCase("--accelerator", "tpu", "mome: --accelerator: 'tpu' is not an accelerator (cpu, cuda or opencl)")]
    public void UnknownChoiceIsOneLine(string option, string value, string message)
    {
        var run = CliTests.Run("logits", "--model", _model, "--tokens", Tokens, option, value);
        Assert.That(run.Code, Is.EqualTo(1));
        Assert.That(run.Err.Trim(), Is.EqualTo(message));
    }

    [Test]
    public void WithoutTheNativeLibraryTheCliFallsBackWithANotice()
    {
        var run = RunChild(new() { ["MOME_NATIVE_LIBRARY"] = Path.Combine(_dir, "absent", "libmome.so") },
            "logits", "--model", _model, "--tokens", Tokens);
        Assert.That(run.Code, Is.EqualTo(0), run.Err);
        var lines = run.Err.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.That(lines, Has.Length.EqualTo(1), "one line of notice");
        Assert.That(lines[0], Does.StartWith("mome: the native library did not load").And.Contain("running on the ILGPU engine"));
        Assert.That(ForwardOracleTests.MaxAbsDiff(Logits(run.Out), NativeLogits()), Is.LessThanOrEqualTo(1e-4));
    }

    [Test]
    public void MomeEngineForcesIlgpuWithoutTouchingTheNativeLibrary()
    {
        var run = RunChild(new() { ["MOME_ENGINE"] = "ilgpu", ["MOME_NATIVE_LIBRARY"] = Path.Combine(_dir, "absent", "libmome.so") },
            "logits", "--model", _model, "--tokens", Tokens);
        Assert.That(run.Code, Is.EqualTo(0), run.Err);
        Assert.That(run.Err, Is.Empty, "a forced engine prints no notice");
        Assert.That(ForwardOracleTests.MaxAbsDiff(Logits(run.Out), NativeLogits()), Is.LessThanOrEqualTo(1e-4));
    }

    private string[] Generate(params string[] engine) =>
        ["generate", "--model", _model, "--prompt", "The capital of", "--max-tokens", "12", .. engine];

    [Test]
    public void IlgpuGeneratesTheNativeText()
    {
        var native = CliTests.Run(Generate("--engine", "native"));
        Assert.That(native.Code, Is.EqualTo(0), native.Err);
        Assert.That(native.Out.Trim(), Is.Not.Empty);
        var ilgpu = CliTests.Run(Generate("--engine", "ilgpu"));
        Assert.That(ilgpu.Code, Is.EqualTo(0), ilgpu.Err);
        Assert.That(ilgpu.Out, Is.EqualTo(native.Out), "greedy decoding: the same tokens, tokenized and decoded alike");

        // Where the native library does not load: the managed reader's tokenizer, the same text.
        var child = RunChild(new() { ["MOME_NATIVE_LIBRARY"] = Path.Combine(_dir, "absent", "libmome.so") }, Generate());
        Assert.That(child.Code, Is.EqualTo(0), child.Err);
        Assert.That(child.Out, Is.EqualTo(native.Out));
        Assert.That(child.Err, Does.Contain("running on the ILGPU engine"));
    }

    [Test]
    public void IlgpuGenerateRefusesCudaInOneLine()
    {
        var run = CliTests.Run(Generate("--engine", "ilgpu", "--cuda", "0"));
        Assert.That(run.Code, Is.EqualTo(1));
        Assert.That(run.Err.Trim(), Is.EqualTo("mome: --cuda needs the native engine (the ILGPU engine picks its device with --accelerator)"));
    }

    [Test]
    public void MomeEngineNativeWithoutTheLibraryFailsInOneLine()
    {
        var run = RunChild(new() { ["MOME_ENGINE"] = "native", ["MOME_NATIVE_LIBRARY"] = Path.Combine(_dir, "absent", "libmome.so") },
            "logits", "--model", _model, "--tokens", Tokens);
        Assert.That(run.Code, Is.EqualTo(1));
        Assert.That(run.Err, Does.StartWith("mome: Mome's native library could not be loaded"));
    }
}
