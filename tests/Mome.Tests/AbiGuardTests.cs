using Mome.Interop;

namespace Mome.Tests;

/// <summary>The managed side of the ABI's guards: the public enums that mirror mome.h's agree
/// with the generated ones value by value, and a CancellationToken stops native work through
/// the abort callback, leaving the objects usable.</summary>
public sealed class AbiGuardTests
{
    private static string Normalised(string name) => name.Replace("_", "", StringComparison.Ordinal).ToLowerInvariant();

    private static readonly (Type Managed, Type Generated, string[] NativeOnly)[] MirroredEnums =
    [
        (typeof(MomeErrorCode), typeof(MomeStatus), ["Ok"]),
        (typeof(TensorType), typeof(MomeTensorType), []),
        (typeof(RopeScaling), typeof(MomeRopeScaling), []),
        (typeof(MetadataType), typeof(MomeValueType), []),
        (typeof(RoutingMode), typeof(MomeRoutingMode), []),
        (typeof(RouterKind), typeof(MomeRouterKind), []),
        (typeof(DeviceBackend), typeof(MomeBackend), []),
    ];

    [Test]
    public void ManagedEnumsMatchTheGeneratedOnesValueByValue()
    {
        foreach (var (managed, generated, nativeOnly) in MirroredEnums)
        {
            var want = Enum.GetNames(generated).Where(n => !nativeOnly.Contains(n))
                .ToDictionary(Normalised, n => Convert.ToInt32(Enum.Parse(generated, n)));
            var have = Enum.GetNames(managed).ToDictionary(Normalised, n => Convert.ToInt32(Enum.Parse(managed, n)));
            Assert.That(have, Is.EquivalentTo(want), $"{managed.Name} must list exactly the values of {generated.Name} (mome.h)");
        }
    }

    private string _dir = "";
    private MomeModel _model = null!;

    [SetUp]
    public void SetUp()
    {
        _dir = TestPaths.NewTempDir();
        var path = Path.Combine(_dir, "m.gguf");
        MomeModel.CreateSynthetic(SyntheticModelConfig.Preset("tiny"), path, seed: 1);
        _model = MomeModel.Open(path);
    }

    [TearDown]
    public void TearDown()
    {
        _model.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    [Test]
    public void ACancelledTokenStopsTheNativeDecodeAndTheSessionStaysUsable()
    {
        using var session = new MomeSession(_model, new SessionOptions { ContextLength = 64 });
        int[] tokens = [1, 50, 60, 70, 80];
        using var cts = new CancellationTokenSource();
        cts.Cancel();
        var e = Assert.Throws<OperationCanceledException>(() => session.Evaluate(tokens, cancellationToken: cts.Token))!;
        Assert.That(e.CancellationToken, Is.EqualTo(cts.Token));
        Assert.That(e.InnerException, Is.TypeOf<MomeException>().With.Property(nameof(MomeException.Code)).EqualTo(MomeErrorCode.Cancelled),
            "the native forward pass stopped itself (MOME_STATUS_CANCELLED)");
        Assert.That(session.SequenceLength(0), Is.EqualTo(0), "a cancelled decode leaves the cache as it was");

        var after = session.Evaluate(tokens);
        using var fresh = new MomeSession(_model, new SessionOptions { ContextLength = 64 });
        Assert.That(after, Is.EqualTo(fresh.Evaluate(tokens)));
    }

    [Test]
    public void ACancelledTokenStopsAnEvaluation()
    {
        using var bank = MemoryBank.Create(_model, new MemoryOptions { Experts = 64, KeyDim = 8, TopK = 4 });
        using var cts = new CancellationTokenSource();
        cts.Cancel();
        Fact[] facts = [new Fact("Q1", "A1")];
        Assert.Throws<OperationCanceledException>(() => MemoryEvaluator.Evaluate(bank, facts, cancellationToken: cts.Token));
        Assert.That(MemoryEvaluator.Evaluate(bank, facts).Facts, Is.EqualTo(1));
    }

    [Test]
    public void SessionOptionsPickTheBackendOneWay()
    {
        var e = Assert.Throws<ArgumentException>(() => new MomeSession(_model, new SessionOptions { Backend = (DeviceBackend)7 }))!;
        Assert.That(e.Message, Does.Contain("unknown backend 7"));
        var cpu = Assert.Throws<MomeException>(() => new MomeSession(_model, new SessionOptions { Device = 1 }))!;
        Assert.That(cpu.Message, Does.Contain("device 0 only"));
        using var reference = new MomeSession(_model, new SessionOptions { ContextLength = 16, Backend = DeviceBackend.CpuReference });
        using var fast = new MomeSession(_model, SessionOptions.OnDevice(null) with { ContextLength = 16 });
        int[] tokens = [1, 9, 33];
        var a = reference.Evaluate(tokens);
        var b = fast.Evaluate(tokens);
        Assert.That(a.Zip(b, (x, y) => Math.Abs(x - y)).Max(), Is.LessThan(1e-3f));
    }
}
