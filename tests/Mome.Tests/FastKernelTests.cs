namespace Mome.Tests;

/// <summary>The native engine's fast CPU kernels against its plain reference kernels.</summary>
public sealed class FastKernelTests
{
    private string _dir = "";

    [SetUp]
    public void SetUp() => _dir = TestPaths.NewTempDir();

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, recursive: true);

    [Test]
    public void FastKernelsMatchTheReference()
    {
        foreach (var type in new[] { TensorType.F32, TensorType.F16, TensorType.BF16 })
        {
            var path = Path.Combine(_dir, $"{type}.gguf");
            MomeModel.CreateSynthetic(SyntheticModelConfig.Preset("tiny") with { WeightType = type }, path, seed: 9);
            using var model = MomeModel.Open(path);
            var tokens = ForwardOracleTests.RandomTokens(33, model.Config.VocabSize, seed: 1);
            using var reference = new MomeSession(model, new SessionOptions { ContextLength = 64, Backend = DeviceBackend.CpuReference });
            using var fast = new MomeSession(model, new SessionOptions { ContextLength = 64, Threads = 3 });
            var a = reference.Evaluate(tokens, allLogits: true);
            var b = fast.Evaluate(tokens, allLogits: true);
            Assert.That(ForwardOracleTests.MaxAbsDiff(a, b), Is.LessThan(1e-4), type.ToString());
        }
    }
}
