using System.Text;

namespace Mome.Tests;

/// <summary>
/// Every kind of broken model file gives a MomeException whose code and message name the
/// file and the problem; nothing crashes, hangs or allocates what a hostile header asks for.
/// </summary>
public sealed class BadInputTests
{
    private string _dir = "";

    [SetUp]
    public void SetUp() => _dir = TestPaths.NewTempDir();

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, recursive: true);

    private string Write(string name, byte[] bytes)
    {
        var path = Path.Combine(_dir, name);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    private static MomeException OpenFails(string path, MomeErrorCode code, string fragment, bool metadataOnly = false)
    {
        var e = Assert.Throws<MomeException>(() => MomeModel.Open(path, metadataOnly).Dispose())!;
        Assert.That(e.Code, Is.EqualTo(code), e.Message);
        Assert.That(e.Message, Does.Contain(path), "the message names the file");
        Assert.That(e.Message, Does.Contain(fragment));
        return e;
    }

    [Test]
    public void TheValidBaseFileOpens()
    {
        using var model = MomeModel.Open(Write("ok.gguf", GgufBuilder.TinyLlama().Build()));
        Assert.That(model.Config.EmbeddingLength, Is.EqualTo(8));
        Assert.That(model.Tensors, Has.Count.EqualTo(11));
    }

    [Test]
    public void MissingFile() => OpenFails(Path.Combine(_dir, "absent.gguf"), MomeErrorCode.IoError, "cannot open");

    [Test]
    public void Directory_() => OpenFails(_dir, MomeErrorCode.IoError, "is a directory");

    [Test]
    public void EmptyFile() => OpenFails(Write("empty.gguf", []), MomeErrorCode.FormatError, "too short");

    [Test]
    public void WrongMagic() =>
        OpenFails(Write("magic.gguf", Encoding.ASCII.GetBytes("GGML and then some bytes that follow")), MomeErrorCode.FormatError, "not a GGUF file");

    [Test]
    public void UnknownVersion() =>
        OpenFails(Write("v7.gguf", new GgufBuilder { Version = 7 }.Build()), MomeErrorCode.Unsupported, "version 7");

    [Test]
    public void VersionOneIsRefused() =>
        OpenFails(Write("v1.gguf", new GgufBuilder { Version = 1 }.Build()), MomeErrorCode.Unsupported, "version 1");

    [Test]
    public void EveryTruncationIsAFormatError()
    {
        var bytes = GgufBuilder.TinyLlama().Build();
        for (var length = 1; length < bytes.Length; length += length < 600 ? 1 : 37)
        {
            var path = Write($"cut{length}.gguf", bytes[..length]);
            var e = Assert.Throws<MomeException>(() => MomeModel.Open(path).Dispose(), $"cut at {length}")!;
            Assert.That(e.Code, Is.EqualTo(MomeErrorCode.FormatError), $"cut at {length}: {e.Message}");
            Assert.That(e.Message, Does.Contain(path));
            File.Delete(path);
        }
    }

    [Test]
    public void AbsurdMetadataCount() =>
        OpenFails(Write("kv.gguf", new GgufBuilder { KvCountOverride = 1UL << 62 }.U32("a", 1).Build()), MomeErrorCode.FormatError,
            "metadata count");

    [Test]
    public void AbsurdTensorCount() =>
        OpenFails(Write("tc.gguf", new GgufBuilder { TensorCountOverride = ulong.MaxValue }.U32("a", 1).Build()),
            MomeErrorCode.FormatError, "tensor count");

    [Test]
    public void AbsurdArrayLength() =>
        OpenFails(Write("arr.gguf", new GgufBuilder().Raw(GgufBuilder.Entry("tokenizer.ggml.tokens", 9, w =>
        {
            w.Write(8u);
            w.Write(1UL << 60);
        })).Build()), MomeErrorCode.FormatError, "more than the file can hold");

    [Test]
    public void StringRunsPastTheEnd() =>
        OpenFails(Write("str.gguf", new GgufBuilder().Raw(GgufBuilder.Entry("general.name", 8, w =>
        {
            w.Write(1000UL);
            w.Write("short"u8);
        })).Build()), MomeErrorCode.FormatError, "runs past the end");

    [Test]
    public void KeyLengthPastTheEnd()
    {
        var bytes = new GgufBuilder().U32("a", 1).Build();
        BitConverter.GetBytes(ulong.MaxValue - 3).CopyTo(bytes, 24); // the first key's length
        OpenFails(Write("key.gguf", bytes), MomeErrorCode.FormatError, "runs past the end");
    }

    [Test]
    public void UnknownValueType() =>
        OpenFails(Write("vt.gguf", new GgufBuilder().Raw(GgufBuilder.Entry("x", 99, w => w.Write(0u))).Build()),
            MomeErrorCode.FormatError, "unknown type 99");

    [Test]
    public void ArraysNestedTooDeep() =>
        OpenFails(Write("deep.gguf", new GgufBuilder().Raw(GgufBuilder.Entry("x", 9, w =>
        {
            for (var i = 0; i < 20; i++)
            {
                w.Write(9u);
                w.Write(1UL);
            }
        })).Build()), MomeErrorCode.FormatError, "nests arrays");

    [Test]
    public void DuplicateKey() =>
        OpenFails(Write("dup.gguf", new GgufBuilder().U32("a", 1).U32("a", 2).Build()), MomeErrorCode.FormatError, "appears twice");

    [Test]
    public void UnknownTensorType() =>
        OpenFails(Write("tt.gguf", new GgufBuilder().Tensor("w", 200, [4], new byte[16]).Build()), MomeErrorCode.FormatError,
            "unknown tensor type 200", metadataOnly: true);

    [Test]
    public void DimensionsThatOverflow() =>
        OpenFails(Write("ovf.gguf", new GgufBuilder().Tensor("w", 0, [1UL << 40, 1UL << 40], [], offset: 0).Build()),
            MomeErrorCode.FormatError, "overflows", metadataOnly: true);

    [Test]
    public void TooManyDimensions() =>
        OpenFails(Write("dims.gguf", new GgufBuilder().Tensor("w", 0, [1, 1, 1, 1, 1], new byte[4]).Build()),
            MomeErrorCode.FormatError, "dimensions", metadataOnly: true);

    [Test]
    public void TensorPastTheEndOfTheFile() =>
        OpenFails(Write("past.gguf", new GgufBuilder().Tensor("w", 0, [1024], [], offset: 1 << 20).Build()),
            MomeErrorCode.FormatError, "extends past the end", metadataOnly: true);

    [Test]
    public void MisalignedTensorOffset() =>
        OpenFails(Write("align.gguf", new GgufBuilder().Tensor("w", 0, [4], [], offset: 4).Build()),
            MomeErrorCode.FormatError, "alignment", metadataOnly: true);

    [Test]
    public void MissingRequiredKey()
    {
        var bytes = GgufBuilder.TinyLlama().Build();
        var key = Encoding.ASCII.GetBytes("llama.embedding_length");
        var at = bytes.AsSpan().IndexOf(key);
        Encoding.ASCII.GetBytes("llama.embedding_lengtX").CopyTo(bytes, at); // the key no longer exists
        OpenFails(Write("nokey.gguf", bytes), MomeErrorCode.FormatError, "'llama.embedding_length' is missing");
    }

    [Test]
    public void MissingArchitecture() =>
        OpenFails(Write("noarch.gguf", new GgufBuilder().U32("a", 1).Build()), MomeErrorCode.FormatError, "general.architecture");

    [Test]
    public void OtherArchitectureIsUnsupportedButInspectable()
    {
        var path = Write("gpt2.gguf", new GgufBuilder().Str("general.architecture", "gpt2").Build());
        OpenFails(path, MomeErrorCode.Unsupported, "'gpt2' is not supported");
        using var model = MomeModel.Open(path, metadataOnly: true);
        Assert.That(model.IsLlama, Is.False);
        Assert.That(model.Metadata["general.architecture"].GetString(), Is.EqualTo("gpt2"));
        Assert.Throws<MomeException>(() => _ = model.Config);
    }

    [Test]
    public void AbsurdHyperParameter()
    {
        var bytes = GgufBuilder.TinyLlama().Build();
        var at = bytes.AsSpan().IndexOf(Encoding.ASCII.GetBytes("llama.block_count")) + "llama.block_count".Length + 4;
        BitConverter.GetBytes(uint.MaxValue).CopyTo(bytes, at);
        OpenFails(Write("layers.gguf", bytes), MomeErrorCode.FormatError, "llama.block_count");
    }

    [Test]
    public void MissingRequiredTensor() =>
        OpenFails(Write("notensor.gguf", GgufBuilder.TinyLlama().Drop("blk.0.attn_q.weight").Build()),
            MomeErrorCode.FormatError, "required tensor 'blk.0.attn_q.weight' is missing");

    [Test]
    public void TransposedTensorIsRefused() =>
        OpenFails(Write("shape.gguf", GgufBuilder.TinyLlama().Reshape("blk.0.ffn_down.weight", 8, 16).Build()),
            MomeErrorCode.FormatError, "'blk.0.ffn_down.weight' has shape [8, 16], expected [16, 8]");

    [Test]
    public void TensorsOfTypesMomeDoesNotComputeAreListedButRefused()
    {
        // IQ4_NL (ggml type 20): blocks of 32 elements in 18 bytes, a codebook format Mome lacks.
        var path = Write("iq4.gguf", GgufBuilder.TinyLlama(embd: 32).Drop("blk.0.attn_q.weight")
            .Tensor("blk.0.attn_q.weight", 20, [32, 32], new byte[32 * 18]).Build());
        OpenFails(path, MomeErrorCode.Unsupported, "IQ4_NL");
        using var model = MomeModel.Open(path, metadataOnly: true);
        var q = model.Tensors.Single(t => t.Name == "blk.0.attn_q.weight");
        Assert.That((int)q.Type, Is.EqualTo(20));
        Assert.That(q.SizeBytes, Is.EqualTo(32UL * 18));
        var e = Assert.Throws<MomeException>(() => model.ReadTensor("blk.0.attn_q.weight"))!;
        Assert.That(e.Code, Is.EqualTo(MomeErrorCode.Unsupported));
        Assert.That(e.Message, Does.Contain("IQ4_NL"));
    }

    [Test]
    public void QuantizedTensorsAreComputedAndReadDequantized()
    {
        // One Q4_0 block per row: scale 0.5 (F16 0x3800), byte j = j | (15 - j) << 4, so element
        // j < 16 is 0.5 (j - 8) and element j + 16 is 0.5 (7 - j).
        var block = new byte[18];
        block[0] = 0x00;
        block[1] = 0x38;
        for (var j = 0; j < 16; j++) block[2 + j] = (byte)(j | ((15 - j) << 4));
        var path = Write("q4.gguf", GgufBuilder.TinyLlama(embd: 32).Drop("blk.0.attn_q.weight")
            .Tensor("blk.0.attn_q.weight", 2, [32, 32], Enumerable.Repeat(block, 32).SelectMany(b => b).ToArray()).Build());
        using var model = MomeModel.Open(path);
        var values = model.ReadTensor("blk.0.attn_q.weight");
        var row = Enumerable.Range(0, 16).Select(j => 0.5f * (j - 8)).Concat(Enumerable.Range(0, 16).Select(j => 0.5f * (7 - j))).ToArray();
        Assert.That(values, Is.EqualTo(Enumerable.Repeat(row, 32).SelectMany(r => r).ToArray()));
        using var session = new MomeSession(model, new SessionOptions { ContextLength = 8 });
        Assert.That(session.Evaluate([1, 2, 3]).All(float.IsFinite), Is.True);
        // Quantized weights run on the CPU backend only; CUDA refuses them by name.
        var cuda = Assert.Throws<MomeException>(() => new MomeSession(model, new SessionOptions { ContextLength = 8, Backend = DeviceBackend.Cuda, Device = 0 }))!;
        Assert.That(cuda.Code, Is.EqualTo(MomeErrorCode.Unsupported));
        Assert.That(cuda.Message, Does.Contain("'blk.0.attn_q.weight' is Q4_0").And.Contain("CUDA backend"));
    }

    [Test]
    public void QuantizedRowNotAMultipleOfItsBlockIsRefused() =>
        // Q4_K packs 256 elements per block; a row of 32 cannot be stored.
        OpenFails(Write("qk.gguf", GgufBuilder.TinyLlama(embd: 32).Drop("blk.0.attn_q.weight")
                .Tensor("blk.0.attn_q.weight", 12, [32, 32], new byte[144 * 4]).Build()),
            MomeErrorCode.FormatError, "of type Q4_K has a row of 32 elements, not a multiple of its block size 256", metadataOnly: true);

    [Test]
    public void TruncatedQuantizedTensorIsRefused()
    {
        // 32 rows of one Q8_0 block (34 bytes) need 1088 bytes; the last tensor gets fewer.
        var bytes = GgufBuilder.TinyLlama(embd: 32).Drop("blk.0.attn_q.weight")
            .Tensor("blk.0.attn_q.weight", 8, [32, 32], new byte[32 * 34]).Build();
        OpenFails(Write("cut.gguf", bytes[..^100]), MomeErrorCode.FormatError, "extends past the end", metadataOnly: true);
    }

    [Test]
    public void RandomCorruptionNeverCrashes()
    {
        var original = GgufBuilder.TinyLlama().Build();
        // Three regions, each mutated a third of the time: the header and metadata, the tensor
        // infos (from the first tensor's name length), and the tensor data.
        var infos = original.AsSpan().IndexOf("token_embd.weight"u8) - 8;
        long dataStart;
        using (var valid = MomeModel.Open(Write("valid.gguf", original))) dataStart = (long)valid.FileInfo.DataOffset;
        Assert.That(infos, Is.GreaterThan(0).And.LessThan(dataStart));
        (int From, int To)[] regions = [(0, infos), (infos, (int)dataStart), ((int)dataStart, original.Length)];
        var rng = new Random(1234);
        var opened = new int[3];
        var decoded = 0;
        for (var i = 0; i < 600; i++)
        {
            var region = i % 3;
            var bytes = (byte[])original.Clone();
            for (var flips = rng.Next(1, 4); flips > 0; flips--)
                bytes[rng.Next(regions[region].From, regions[region].To)] = (byte)rng.Next(256);
            var path = Write("fuzz.gguf", bytes);
            var metadataOnly = rng.Next(2) == 0;
            MomeModel model;
            try
            {
                model = MomeModel.Open(path, metadataOnly);
            }
            catch (MomeException e)
            {
                Assert.That(e.Message, Does.Contain(path), e.Message);
                continue;
            }
            using (model)
            {
                opened[region]++;
                foreach (var (_, value) in model.Metadata)
                    try { _ = value.ToString(); }
                    catch (MomeException e) { Assert.That(e.Message, Does.Contain("cannot be read as"), e.Message); }
                foreach (var tensor in model.Tensors)
                {
                    Assert.That(tensor.FileOffset + tensor.SizeBytes, Is.LessThanOrEqualTo((ulong)bytes.Length), tensor.Name);
                    try { Assert.That(model.ReadTensor(tensor.Name), Has.Length.EqualTo(tensor.ElementCount)); }
                    catch (MomeException e) { Assert.That(e.Code, Is.EqualTo(MomeErrorCode.Unsupported), e.Message); }
                }
                if (metadataOnly) continue;
                try
                {
                    using var session = new MomeSession(model, new SessionOptions { ContextLength = 4, Threads = 1 });
                    Assert.That(session.Evaluate([1, 2]), Has.Length.EqualTo(model.Config.VocabSize));
                    decoded++;
                }
                catch (MomeException e)
                {
                    Assert.That(e.Code, Is.EqualTo(MomeErrorCode.InvalidArgument), e.Message); // a mutated vocabulary size
                }
            }
        }
        Assert.That(opened, Has.All.GreaterThan(0), "mutations in every region that only touch values still open");
        Assert.That(decoded, Is.GreaterThan(0), "some corrupted models run a forward pass");
    }

    [Test]
    public void VersionTwoReadsLikeVersionThree()
    {
        var v2Builder = GgufBuilder.TinyLlama();
        v2Builder.Version = 2;
        using var v3 = MomeModel.Open(Write("v3.gguf", GgufBuilder.TinyLlama().Build()));
        using var v2 = MomeModel.Open(Write("v2.gguf", v2Builder.Build()));
        Assert.That(v2.FileInfo.Version, Is.EqualTo(2u));
        Assert.That(v2.Config, Is.EqualTo(v3.Config));
        Assert.That(v2.Tensors.Select(t => (t.Name, t.FileOffset, t.SizeBytes)), Is.EqualTo(v3.Tensors.Select(t => (t.Name, t.FileOffset, t.SizeBytes))));
        Assert.That(v2.Metadata.Keys, Is.EqualTo(v3.Metadata.Keys));
    }

    [TestCase(0u)]
    [TestCase(3u)]
    [TestCase(48u)]
    [TestCase(0x80000001u)]
    public void AlignmentThatIsNotAPowerOfTwo(uint alignment) =>
        OpenFails(Write("align.gguf", new GgufBuilder().U32("general.alignment", alignment).F32Tensor("w", 4).Build()),
            MomeErrorCode.FormatError, $"general.alignment {alignment} is not a power of two", metadataOnly: true);

    [Test]
    public void AlignmentOfAnotherType() =>
        OpenFails(Write("align.gguf", new GgufBuilder().F32("general.alignment", 32).F32Tensor("w", 4).Build()),
            MomeErrorCode.FormatError, "general.alignment must be a uint32", metadataOnly: true);

    [Test]
    public void HugeAlignmentPutsTheDataPastTheEnd() =>
        OpenFails(Write("align.gguf", new GgufBuilder().U32("general.alignment", 1u << 31).F32Tensor("w", 4).Build()),
            MomeErrorCode.FormatError, "general.alignment 2147483648 puts the tensor data at byte 2147483648, past the end", metadataOnly: true);

    [Test]
    public void TensorNameLongerThanTheLimit() =>
        OpenFails(Write("name.gguf", new GgufBuilder().F32Tensor(new string('n', 70000), 4).Build()),
            MomeErrorCode.FormatError, "tensor name 0 is 70000 bytes long (1 to 65536 allowed)", metadataOnly: true);

    [Test]
    public void EmptyTensorName() =>
        OpenFails(Write("name.gguf", new GgufBuilder().F32Tensor("", 4).Build()),
            MomeErrorCode.FormatError, "tensor name 0 is 0 bytes long", metadataOnly: true);

    [Test]
    public void MetadataKeyLongerThanTheLimit() =>
        OpenFails(Write("key.gguf", new GgufBuilder().U32(new string('k', 70000), 1).Build()),
            MomeErrorCode.FormatError, "metadata key 0 is 70000 bytes long", metadataOnly: true);

    [Test]
    public void TensorNameLengthPastTheEnd()
    {
        var bytes = new GgufBuilder().F32Tensor("w", 4).Build();
        BitConverter.GetBytes(1UL << 62).CopyTo(bytes, 24); // the first tensor's name length
        OpenFails(Write("name.gguf", bytes), MomeErrorCode.FormatError, "tensor name 0 of 4611686018427387904 bytes runs past the end",
            metadataOnly: true);
    }

    [Test]
    public void UseAfterDisposeThrowsInsteadOfCrashing()
    {
        var model = MomeModel.Open(Write("ok.gguf", GgufBuilder.TinyLlama().Build()));
        var value = model.Metadata["llama.embedding_length"];
        model.Dispose();
        Assert.Throws<ObjectDisposedException>(() => value.GetInt64());
        Assert.Throws<ObjectDisposedException>(() => _ = model.Config);
    }
}
