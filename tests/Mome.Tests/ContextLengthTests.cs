using System.Buffers.Binary;
using System.Text;

namespace Mome.Tests;

/// <summary>
/// A model file's context_length is only a claim: a huge or hostile one opens, and a session
/// left at the default context gets min(context_length, 4096) positions (llama.cpp's tools
/// default), never a cache the file sizes. Longer contexts are asked for explicitly.
/// </summary>
public sealed class ContextLengthTests
{
    private const int DefaultCap = 4096;
    private string _dir = "";

    [SetUp]
    public void SetUp() => _dir = TestPaths.NewTempDir();

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, recursive: true);

    [TestCase(64UL, 64)]
    [TestCase(8192UL, DefaultCap)]
    [TestCase(int.MaxValue + 0UL, DefaultCap)]
    [TestCase(uint.MaxValue + 0UL, DefaultCap)]
    [TestCase(1UL << 40, DefaultCap)]
    [TestCase(long.MaxValue + 0UL, DefaultCap)]
    public void ADefaultSessionHoldsTheClaimedContextAtMost4096(ulong claimed, int expected)
    {
        var path = Path.Combine(_dir, "m.gguf");
        File.WriteAllBytes(path, GgufBuilder.TinyLlama(context: claimed).Build());
        using var model = MomeModel.Open(path);
        Assert.That(model.Config.ContextLength, Is.EqualTo((long)claimed), "the claim is reported as the file says");
        using var session = new MomeSession(model);
        Assert.That(session.ContextLength, Is.EqualTo(expected));
        Assert.That(session.Decode([1], [0], [0]), Has.Length.EqualTo(32), "the capped session decodes");
    }

    [TestCase(0UL)]
    [TestCase(1UL << 63)]
    public void AContextLengthOutsideInt64sPositivesIsRefusedByName(ulong claimed)
    {
        var path = Path.Combine(_dir, "bad.gguf");
        File.WriteAllBytes(path, GgufBuilder.TinyLlama(context: claimed).Build());
        var e = Assert.Throws<MomeException>(() => MomeModel.Open(path).Dispose())!;
        Assert.That(e.Code, Is.EqualTo(MomeErrorCode.FormatError));
        Assert.That(e.Message, Does.Contain("llama.context_length"));
    }

    [Test]
    public void AnExplicitContextBeyondTheClaimIsGivenAndOneBeyondTwoTo24IsRefused()
    {
        var path = Path.Combine(_dir, "m.gguf");
        File.WriteAllBytes(path, GgufBuilder.TinyLlama(context: 1UL << 40).Build());
        using var model = MomeModel.Open(path);
        using (var session = new MomeSession(model, new SessionOptions { ContextLength = 10000 }))
            Assert.That(session.ContextLength, Is.EqualTo(10000));
        var e = Assert.Throws<MomeException>(() => new MomeSession(model, new SessionOptions { ContextLength = (1 << 24) + 1 }))!;
        Assert.That(e.Code, Is.EqualTo(MomeErrorCode.InvalidArgument));
        Assert.That(e.Message, Does.Contain("n_ctx = 16777217 is outside 1..16777216"));
    }

    [Test]
    public void GeneratorsOverAModelClaimingTwoTo31PositionsGetTheCappedContext()
    {
        var path = Path.Combine(_dir, "tiny.gguf");
        MomeModel.CreateSynthetic(SyntheticModelConfig.Preset("tiny"), path, seed: 1);
        File.WriteAllBytes(path, WithContextLength(File.ReadAllBytes(path), int.MaxValue));
        using var model = MomeModel.Open(path);
        Assert.That(model.Config.ContextLength, Is.EqualTo(int.MaxValue));
        using (var generator = new TextGenerator(model))
            Assert.That(generator.Generate("hello", new GenerationOptions { MaxTokens = 2 }), Is.Not.Null);
        using var batched = new BatchedGenerator(model, new BatchedGeneratorOptions { MaxSequences = 2 });
        Assert.That(batched.ContextLength, Is.EqualTo(DefaultCap));
    }

    /// <summary>The file with its UINT32 llama.context_length value replaced.</summary>
    private static byte[] WithContextLength(byte[] gguf, uint value)
    {
        var key = Encoding.UTF8.GetBytes("llama.context_length");
        var at = gguf.AsSpan().IndexOf(key);
        Assert.That(at, Is.GreaterThan(0), "the synthetic model has llama.context_length");
        var type = at + key.Length;
        Assert.That(BinaryPrimitives.ReadUInt32LittleEndian(gguf.AsSpan(type)), Is.EqualTo(4u), "stored as UINT32");
        BinaryPrimitives.WriteUInt32LittleEndian(gguf.AsSpan(type + 4), value);
        return gguf;
    }
}
