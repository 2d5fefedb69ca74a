using LLama;
using LLama.Common;
using LLama.Native;
using Mome.Cli;

namespace Mome.Tests;

/// <summary>`mome model quantize` against llama.cpp's quantizer: Q8_0 and Q4_0 round
/// deterministically, so every tensor both quantize to the same type holds the same bytes.</summary>
[NonParallelizable]
public sealed class QuantizeTests
{
    private string _dir = "";

    [SetUp]
    public void SetUp() => _dir = TestPaths.NewTempDir();

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, recursive: true);

    private static (int Code, string Out, string Err) Run(params string[] args) => CliTests.Run(args);

    private static byte[] TensorBytes(byte[] file, TensorInfo t) => file.AsSpan(checked((int)t.FileOffset), checked((int)t.SizeBytes)).ToArray();

    [TestCase(LLamaFtype.MOSTLY_Q8_0, TensorType.Q8_0, "Q8_0", 16)]
    [TestCase(LLamaFtype.MOSTLY_Q4_0, TensorType.Q4_0, "q4_0", 15)]
    public void QuantizedTensorsAreByteIdenticalToLlamaCpps(LLamaFtype ftype, TensorType type, string cliType, int expectedTensors)
    {
        var llamaPath = QuantizedOracleTests.QuantizedModel(_dir, QuantizedOracleTests.Wide, 5, ftype);
        var f32 = Path.Combine(_dir, "f32-5.gguf");
        var momePath = Path.Combine(_dir, "mome.gguf");
        var run = Run("model", "quantize", f32, momePath, cliType);
        Assert.That(run.Code, Is.EqualTo(0), run.Err);

        using var llama = MomeModel.Open(llamaPath);
        using var mome = MomeModel.Open(momePath);
        var llamaBytes = File.ReadAllBytes(llamaPath);
        var momeBytes = File.ReadAllBytes(momePath);
        var compared = 0;
        foreach (var t in llama.Tensors.Where(t => t.Type == type))
        {
            var m = mome.Tensors.Single(x => x.Name == t.Name);
            Assert.That(m.Type, Is.EqualTo(type), t.Name);
            Assert.That(TensorBytes(momeBytes, m), Is.EqualTo(TensorBytes(llamaBytes, t)), t.Name);
            compared++;
        }
        Assert.That(compared, Is.EqualTo(expectedTensors), "tensors llama.cpp quantized to the type");
        Assert.That(mome.Tensors.Where(t => t.Shape.Length == 2).All(t => t.Type == type), Is.True, "every matrix quantized");
        Assert.That(mome.Tensors.Where(t => t.Shape.Length == 1).All(t => t.Type == TensorType.F32), Is.True, "vectors copied");
        Assert.That(mome.Metadata["general.file_type"].ToString(), Is.EqualTo(llama.Metadata["general.file_type"].ToString()));

        // llama.cpp runs Mome's file, and gives the logits Mome gives.
        var tokens = new[] { 5, 17, 300, 42, 7 };
        var expected = ForwardOracleTests.LlamaCppLogits(momePath, tokens);
        using var session = new MomeSession(mome, new SessionOptions { ContextLength = 16 });
        var got = session.Evaluate(tokens);
        Assert.That(got.Zip(expected[^1], (a, b) => Math.Abs(a - b)).Max(), Is.LessThanOrEqualTo(1e-4));
    }

    [Test]
    public void NonFiniteWeightIsRefusedByTensorAndNoFileIsWritten()
    {
        var f32 = Path.Combine(_dir, "f32.gguf");
        MomeModel.CreateSynthetic(SyntheticModelConfig.Preset("tiny"), f32);
        string name;
        long at;
        using (var model = MomeModel.Open(f32))
        {
            var t = model.Tensors.First(x => x.Shape.Length == 2 && x.Type == TensorType.F32 && x.Name.Contains("ffn_up"));
            name = t.Name;
            at = checked((long)t.FileOffset) + 4 * (t.Shape[0] + 3);  // row 1, column 3
        }
        using (var f = File.OpenWrite(f32))
        {
            f.Position = at;
            f.Write(BitConverter.GetBytes(float.NaN));
        }
        var dst = Path.Combine(_dir, "q.gguf");
        var e = Assert.Throws<MomeException>(() => MomeModel.Quantize(f32, dst, TensorType.Q8_0))!;
        Assert.That(e.Code, Is.EqualTo(MomeErrorCode.FormatError));
        Assert.That(e.Message, Does.Contain($"tensor '{name}' has a non-finite weight").And.Contain("row 1, column 3"));
        Assert.That(File.Exists(dst), Is.False);
    }

    [Test]
    public void OtherTypesAreRefusedAndNoFileIsWritten()
    {
        var f32 = Path.Combine(_dir, "f32.gguf");
        MomeModel.CreateSynthetic(SyntheticModelConfig.Preset("tiny"), f32);
        var dst = Path.Combine(_dir, "q.gguf");
        var e = Assert.Throws<ArgumentException>(() => MomeModel.Quantize(f32, dst, TensorType.Q4_K))!;
        Assert.That(e.Message, Does.Contain("Q8_0 or Q4_0"));
        Assert.That(Run("model", "quantize", f32, dst, "Q4_K").Code, Is.Not.EqualTo(0));
        Assert.That(File.Exists(dst), Is.False);
        var missing = Run("model", "quantize", Path.Combine(_dir, "absent.gguf"), dst, "Q8_0");
        Assert.That(missing.Code, Is.EqualTo(1));
        Assert.That(missing.Err, Does.Contain("absent.gguf"));
    }
}
