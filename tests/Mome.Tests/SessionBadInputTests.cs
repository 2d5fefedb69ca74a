namespace Mome.Tests;

/// <summary>Bad input to the forward pass: a clear MomeException, and the session keeps
/// working with its cache unchanged.</summary>
public sealed class SessionBadInputTests
{
    private string _dir = "";
    private MomeModel _model = null!;
    private MomeSession _session = null!;

    [SetUp]
    public void SetUp()
    {
        _dir = TestPaths.NewTempDir();
        var path = Path.Combine(_dir, "m.gguf");
        MomeModel.CreateSynthetic(SyntheticModelConfig.Preset("tiny"), path, seed: 1);
        _model = MomeModel.Open(path);
        _session = new MomeSession(_model, new SessionOptions { ContextLength = 16, MaxSequences = 2 });
    }

    [TearDown]
    public void TearDown()
    {
        _session.Dispose();
        _model.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    private void Fails(Action action, MomeErrorCode code, string fragment)
    {
        var before = _session.SequenceLength(0);
        var e = Assert.Throws<MomeException>(() => action())!;
        Assert.That(e.Code, Is.EqualTo(code), e.Message);
        Assert.That(e.Message, Does.Contain(fragment));
        Assert.That(_session.SequenceLength(0), Is.EqualTo(before), "the cache is unchanged");
    }

    [Test]
    public void TokenOutOfRange()
    {
        _session.Evaluate([5, 6]);
        Fails(() => _session.Evaluate([7, 512]), MomeErrorCode.OutOfRange, "token 512");
        Fails(() => _session.Evaluate([-1]), MomeErrorCode.OutOfRange, "token -1");
    }

    [Test]
    public void EmptyInput() => Fails(() => _session.Evaluate([]), MomeErrorCode.InvalidArgument, "empty");

    [Test]
    public void ContextOverflow()
    {
        _session.Evaluate(Enumerable.Range(10, 15).ToArray());
        Fails(() => _session.Evaluate([1, 2]), MomeErrorCode.OutOfRange, "context overflow");
        Assert.That(_session.Evaluate([3]), Has.Length.EqualTo(512), "the last free position still works");
    }

    [Test]
    public void PositionsOutOfOrder()
    {
        _session.Evaluate([5, 6, 7]);
        Fails(() => _session.Decode([8], [5], [0]), MomeErrorCode.InvalidArgument, "out of order");
        Fails(() => _session.Decode([8, 9], [3, 3], [0, 0]), MomeErrorCode.InvalidArgument, "out of order");
        Fails(() => _session.Decode([8], [1], [0]), MomeErrorCode.InvalidArgument, "continues at position 3");
    }

    [Test]
    public void UnknownSequence() => Fails(() => _session.Decode([8], [0], [2]), MomeErrorCode.OutOfRange, "sequence id 2");

    [Test]
    public void FailedBatchChangesNothingAndTheNextOneMatches()
    {
        _session.Evaluate([5, 6]);
        var expected = _session.Evaluate([7]);
        _session.Truncate(0, 2);
        Fails(() => _session.Decode([7, 9999], [2, 0], [0, 1]), MomeErrorCode.OutOfRange, "token 9999");
        Assert.That(_session.Evaluate([7]), Is.EqualTo(expected));
    }

    [Test]
    public void TruncateOutOfRange() => Fails(() => _session.Truncate(0, 3), MomeErrorCode.OutOfRange, "cannot truncate");

    [Test]
    public void SessionUsedAfterDispose()
    {
        _session.Dispose();
        Assert.Throws<ObjectDisposedException>(() => _session.Evaluate([1]));
        Assert.Throws<ObjectDisposedException>(() => _session.SequenceLength(0));
    }

    [Test]
    public void SessionKeepsItsModelAliveAfterTheModelIsDisposed()
    {
        _model.Dispose();
        Assert.That(_session.Evaluate([5, 6]), Has.Length.EqualTo(512));
    }

    [Test]
    public void AbsurdSessionOptions()
    {
        var e = Assert.Throws<MomeException>(() => new MomeSession(_model, new SessionOptions { ContextLength = 1 << 30 }))!;
        Assert.That(e.Code, Is.EqualTo(MomeErrorCode.InvalidArgument));
        e = Assert.Throws<MomeException>(() => new MomeSession(_model, new SessionOptions { ContextLength = 1 << 24, MaxSequences = 4096 }))!;
        Assert.That(e.Code, Is.EqualTo(MomeErrorCode.OutOfMemory));
        Assert.That(e.Message, Does.Contain("GiB"));
    }

    [Test]
    public void ModelMissingATensorOrWithAWrongShapeIsRefusedForASession()
    {
        var missing = Path.Combine(_dir, "missing.gguf");
        File.WriteAllBytes(missing, GgufBuilder.TinyLlama().Drop("blk.0.ffn_up.weight").Build());
        using var inspect = MomeModel.Open(missing, metadataOnly: true);
        var e = Assert.Throws<MomeException>(() => new MomeSession(inspect))!;
        Assert.That(e.Message, Does.Contain("'blk.0.ffn_up.weight' is missing"));

        var wrong = Path.Combine(_dir, "wrong.gguf");
        File.WriteAllBytes(wrong, GgufBuilder.TinyLlama().Reshape("blk.0.attn_k.weight", 8, 4).Build());
        using var inspectWrong = MomeModel.Open(wrong, metadataOnly: true);
        e = Assert.Throws<MomeException>(() => new MomeSession(inspectWrong))!;
        Assert.That(e.Message, Does.Contain("'blk.0.attn_k.weight' has shape [8, 4], expected [8, 8]"));
    }
}
