using Mome.Engines;
using Mome.Ilgpu;

namespace Mome.Tests;

/// <summary>Bad files, batches and session parameters give every engine the same MomeException
/// (code and message), and leave a session as it was.</summary>
[TestFixture(EngineKind.Native)]
[TestFixture(EngineKind.Ilgpu)]
public sealed class EngineBadInputTests(EngineKind engine)
{
    private string _dir = "";
    private string _model = "";

    [OneTimeSetUp]
    public void OneTimeSetUp()
    {
        _dir = TestPaths.NewTempDir();
        _model = Path.Combine(_dir, "tiny.gguf");
        MomeModel.CreateSynthetic(SyntheticModelConfig.Preset("tiny"), _model, seed: 2);
    }

    [OneTimeTearDown]
    public void OneTimeTearDown() => Directory.Delete(_dir, recursive: true);

    private EngineSession Open(SessionOptions? options = null) =>
        EngineSelection.Open(engine, _model, options ?? new SessionOptions { ContextLength = 8, MaxSequences = 2 });

    private static void Fails(Action call, MomeErrorCode code, string message)
    {
        var e = Assert.Throws<MomeException>(() => call())!;
        Assert.That(e.Code, Is.EqualTo(code), e.Message);
        Assert.That(e.Message, Is.EqualTo(message));
    }

    [Test]
    public void TokenOutsideTheVocabulary()
    {
        using var s = Open();
        var vocab = s.Session.VocabSize;
        Fails(() => s.Session.Evaluate([1, vocab]), MomeErrorCode.OutOfRange,
            $"token {vocab} (batch index 1) is outside the vocabulary 0..{vocab - 1}");
        Fails(() => s.Session.Evaluate([-3]), MomeErrorCode.OutOfRange, $"token -3 (batch index 0) is outside the vocabulary 0..{vocab - 1}");
        Assert.That(s.Session.SequenceLength(0), Is.Zero, "a refused batch changes nothing");
    }

    [Test]
    public void SequenceOutOfRange()
    {
        using var s = Open();
        Fails(() => s.Session.Decode([1], [0], [2]), MomeErrorCode.OutOfRange, "sequence id 2 (batch index 0) is outside 0..1");
        Fails(() => s.Session.SequenceLength(-1), MomeErrorCode.OutOfRange, "sequence id -1 is outside 0..1");
    }

    [Test]
    public void PositionOutOfOrder()
    {
        using var s = Open();
        s.Session.Evaluate([1, 2]);
        Fails(() => s.Session.Decode([3], [5], [0]), MomeErrorCode.InvalidArgument,
            "position 5 of sequence 0 (batch index 0) is out of order: the sequence continues at position 2");
        Assert.That(s.Session.SequenceLength(0), Is.EqualTo(2));
    }

    [Test]
    public void ContextOverflow()
    {
        using var s = Open();
        s.Session.Evaluate([1, 2, 3, 4, 5, 6, 7, 8]);
        Fails(() => s.Session.Evaluate([9]), MomeErrorCode.OutOfRange, "context overflow: sequence 0 would need position 8, the session holds 8");
    }

    [Test]
    public void TruncateBeyondTheLength()
    {
        using var s = Open();
        s.Session.Evaluate([1, 2, 3], sequence: 1);
        Fails(() => s.Session.Truncate(1, 4), MomeErrorCode.OutOfRange, "cannot truncate sequence 1 of length 3 to 4");
        s.Session.Truncate(1, 1);
        Assert.That(s.Session.SequenceLength(1), Is.EqualTo(1));
    }

    [Test]
    public void ACancelledDecodeChangesNothing()
    {
        using var s = Open();
        var before = s.Session.Evaluate([1, 2]);
        using var cancelled = new CancellationTokenSource();
        cancelled.Cancel();
        Assert.Throws<OperationCanceledException>(() => s.Session.Evaluate([3, 4], cancellationToken: cancelled.Token));
        Assert.That(s.Session.SequenceLength(0), Is.EqualTo(2));
        s.Session.Truncate(0, 0);
        Assert.That(s.Session.Evaluate([1, 2]), Is.EqualTo(before), "the session still computes the same logits");
    }

    [Test]
    public void EmptyBatch()
    {
        using var s = Open();
        Fails(() => s.Session.Evaluate([]), MomeErrorCode.InvalidArgument, "the batch is empty: give at least one token");
    }

    [TestCase(-1, 1, "n_ctx = -1 is outside 1..16777216")]
    [TestCase(8, 0, "n_seq_max = 0 is outside 1..4096")]
    [TestCase(8, 5000, "n_seq_max = 5000 is outside 1..4096")]
    public void SessionParameters(int context, int sequences, string message) =>
        Fails(() => Open(new SessionOptions { ContextLength = context, MaxSequences = sequences }).Dispose(), MomeErrorCode.InvalidArgument, message);

    [Test]
    public void MissingFile()
    {
        var path = Path.Combine(_dir, "absent.gguf");
        Fails(() => EngineSelection.Open(engine, path, new SessionOptions()).Dispose(), MomeErrorCode.IoError,
            $"{path}: cannot open: No such file or directory");
    }

    [Test]
    public void MissingTensor()
    {
        var path = Path.Combine(_dir, "missing.gguf");
        File.WriteAllBytes(path, GgufBuilder.TinyLlama().Drop("blk.0.attn_k.weight").Build());
        Fails(() => EngineSelection.Open(engine, path, new SessionOptions()).Dispose(), MomeErrorCode.FormatError,
            $"{path}: required tensor 'blk.0.attn_k.weight' is missing");
    }
}
