using System.Text;
using System.Text.Json.Nodes;

namespace Mome.Tests;

/// <summary>Memory banks: creation, the fresh-bank identity, the memory layer inside the
/// forward pass, and bank files (round trip, corruption, other models, bad input).</summary>
public sealed class MemoryBankTests
{
    private string _dir = "";
    private MomeModel _model = null!;

    private static readonly MemoryOptions Small = new() { Experts = 4096, KeyDim = 32, TopK = 8 };

    [SetUp]
    public void SetUp()
    {
        _dir = TestPaths.NewTempDir();
        var path = Path.Combine(_dir, "m.gguf");
        MomeModel.CreateSynthetic(SyntheticModelConfig.Preset("tiny") with { InitStd = 0.25f }, path, seed: 1);
        _model = MomeModel.Open(path);
    }

    [TearDown]
    public void TearDown()
    {
        _model.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    private static int[] Tokens(int n, int seed)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, n).Select(_ => rng.Next(3, 512)).ToArray();
    }

    private float[] Logits(MemoryBank? bank, int[] tokens, bool reference = false)
    {
        using var session = new MomeSession(_model, new SessionOptions { ContextLength = 64, Memory = bank, Backend = reference ? DeviceBackend.CpuReference : DeviceBackend.Cpu });
        return session.Evaluate(tokens, allLogits: true);
    }

    /// <summary>Gives every expert a random B so the bank changes the model.</summary>
    private static void Randomise(MemoryBank bank, int seed)
    {
        var rng = new Random(seed);
        var n = bank.Options.Rank * (int)bank.Model.Config.EmbeddingLength;
        for (var slot = 0; slot < bank.Options.Layers.Count; slot++)
            for (var e = 0L; e < bank.Options.Experts; e++)
                bank.SetExpert(slot, e, null, Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() - 0.5)).ToArray());
    }

    [TestCase(RoutingMode.Sequence, RouterKind.Flat)]
    [TestCase(RoutingMode.Token, RouterKind.Flat)]
    [TestCase(RoutingMode.Sequence, RouterKind.Product)]
    [TestCase(RoutingMode.Token, RouterKind.Product)]
    public void AFreshBankLeavesLogitsBitIdentical(RoutingMode routing, RouterKind router)
    {
        using var bank = MemoryBank.Create(_model, Small with { Routing = routing, Router = router });
        var tokens = Tokens(9, 1);
        Assert.That(Logits(bank, tokens), Is.EqualTo(Logits(null, tokens)));
    }

    [Test]
    public void DefaultLayerIsAtThreeQuartersDepth()
    {
        using var bank = MemoryBank.Create(_model, Small);
        Assert.That(bank.Options.Layers, Is.EqualTo(new[] { 1 }), "a 2-layer model: layer 1");
        Assert.That(bank.SizeBytes, Is.EqualTo((ulong)(32 * 64 * 4 + 64 * 4 + 4096 * 32 * 4 + 2 * 4096 * 64 * 4)));
    }

    [TestCase(RoutingMode.Sequence)]
    [TestCase(RoutingMode.Token)]
    public void ATunedBankChangesTheModelAndFastMatchesReference(RoutingMode routing)
    {
        using var bank = MemoryBank.Create(_model, Small with { Routing = routing, Layers = [0, 1] });
        Randomise(bank, 5);
        var tokens = Tokens(7, 2);
        var base_ = Logits(null, tokens);
        var fast = Logits(bank, tokens);
        var reference = Logits(bank, tokens, reference: true);
        Assert.That(fast.Zip(base_).Max(p => Math.Abs(p.First - p.Second)), Is.GreaterThan(1e-3), "the memory layers run");
        Assert.That(fast.Zip(reference).Max(p => Math.Abs(p.First - p.Second)), Is.LessThan(1e-4));
    }

    [Test]
    public void PerSequenceRoutesComeFromTheQuestionAndAreReusedDuringDecode()
    {
        using var bank = MemoryBank.Create(_model, Small);
        Randomise(bank, 6);
        var question = Tokens(6, 3);
        // Two identical conversations, one decoding in steps, give the same logits; a third
        // that sees the question and the next token in one batch routes from another mean.
        using var a = new MomeSession(_model, new SessionOptions { ContextLength = 32, Memory = bank });
        using var b = new MomeSession(_model, new SessionOptions { ContextLength = 32, Memory = bank });
        a.Evaluate(question);
        b.Evaluate(question);
        var stepA = a.Evaluate([42]);
        var stepB = b.Evaluate([42]);
        Assert.That(stepA, Is.EqualTo(stepB));
        using var c = new MomeSession(_model, new SessionOptions { ContextLength = 32, Memory = bank });
        var together = c.Evaluate([.. question, 42]);
        Assert.That(together, Is.Not.EqualTo(stepA));
        // Clearing a sequence routes its next question anew.
        a.Clear();
        Assert.That(a.Evaluate([.. question, 42]), Is.EqualTo(together));
    }

    [Test]
    public void BatchedSequencesEqualEachAloneWithMemory()
    {
        using var bank = MemoryBank.Create(_model, Small);
        Randomise(bank, 7);
        int[][] questions = [Tokens(4, 1), Tokens(7, 2)];
        var alone = questions.Select(q =>
        {
            using var s = new MomeSession(_model, new SessionOptions { ContextLength = 32, Memory = bank });
            return s.Evaluate(q);
        }).ToArray();
        using var session = new MomeSession(_model, new SessionOptions { ContextLength = 32, MaxSequences = 2, Memory = bank });
        var tokens = questions[1].Concat(questions[0]).ToArray();
        var positions = Enumerable.Range(0, 7).Concat(Enumerable.Range(0, 4)).ToArray();
        var ids = Enumerable.Repeat(1, 7).Concat(Enumerable.Repeat(0, 4)).ToArray();
        var want = new bool[11];
        want[6] = want[10] = true;
        var both = session.Decode(tokens, positions, ids, want);
        Assert.That(both[..512].Zip(alone[1]).Max(p => Math.Abs(p.First - p.Second)), Is.LessThan(1e-5));
        Assert.That(both[512..].Zip(alone[0]).Max(p => Math.Abs(p.First - p.Second)), Is.LessThan(1e-5));
    }

    [Test]
    public void SaveLoadRoundTripIsBitExact()
    {
        using var bank = MemoryBank.Create(_model, Small with { WeightType = TensorType.BF16, Layers = [0, 1] });
        Randomise(bank, 8);
        var first = Path.Combine(_dir, "a.mome");
        var second = Path.Combine(_dir, "b.mome");
        bank.Save(first);
        using var loaded = MemoryBank.Load(_model, first);
        Assert.That(loaded.Options, Is.EqualTo(bank.Options).Using<MemoryOptions>((x, y) =>
            x.Layers.SequenceEqual(y.Layers) && x with { Layers = [] } == y with { Layers = [] }));
        loaded.Save(second);
        Assert.That(File.ReadAllBytes(second), Is.EqualTo(File.ReadAllBytes(first)));
        var tokens = Tokens(5, 4);
        Assert.That(Logits(loaded, tokens), Is.EqualTo(Logits(bank, tokens)));
        Assert.That(loaded.GetExpert(1, 4000), Is.EqualTo(bank.GetExpert(1, 4000)));
    }

    [Test]
    public void WritingALoadedBankNeverTouchesItsFile()
    {
        using var bank = MemoryBank.Create(_model, Small);
        var path = Path.Combine(_dir, "bank.mome");
        bank.Save(path);
        var before = File.ReadAllBytes(path);
        using var loaded = MemoryBank.Load(_model, path);
        loaded.SetExpert(0, 3, null, Enumerable.Repeat(1f, 64).ToArray());
        Assert.That(loaded.GetExpert(0, 3).B, Is.All.EqualTo(1f));
        Assert.That(File.ReadAllBytes(path), Is.EqualTo(before));
    }

    [Test]
    public void AFlippedByteFailsTheChecksum()
    {
        using var bank = MemoryBank.Create(_model, Small);
        var path = Path.Combine(_dir, "bank.mome");
        bank.Save(path);
        var (header, dataStart) = ReadHeader(path);
        var a = header["layers.0.a"]!["data_offsets"]!.AsArray();
        var bytes = File.ReadAllBytes(path);
        bytes[dataStart + (long)a[0]! + 1000] ^= 0x10;
        File.WriteAllBytes(path, bytes);
        var e = Assert.Throws<MomeException>(() => MemoryBank.Load(_model, path))!;
        Assert.That(e.Code, Is.EqualTo(MomeErrorCode.FormatError));
        Assert.That(e.Message, Does.Contain("checksum mismatch in tensor 'layers.0.a'").And.Contain(path));
    }

    [Test]
    public void ABankForAnotherModelIsRefused()
    {
        using var bank = MemoryBank.Create(_model, Small);
        var path = Path.Combine(_dir, "bank.mome");
        bank.Save(path);

        var sameShape = Path.Combine(_dir, "other.gguf");
        MomeModel.CreateSynthetic(SyntheticModelConfig.Preset("tiny") with { InitStd = 0.25f }, sameShape, seed: 2);
        using var other = MomeModel.Open(sameShape);
        var e = Assert.Throws<MomeException>(() => MemoryBank.Load(other, path))!;
        Assert.That(e.Message, Does.Contain("different base model").And.Contain("same shape, other weights"));

        var otherShape = Path.Combine(_dir, "wide.gguf");
        MomeModel.CreateSynthetic(SyntheticModelConfig.Preset("tiny") with { EmbeddingLength = 96 }, otherShape, seed: 1);
        using var wide = MomeModel.Open(otherShape);
        e = Assert.Throws<MomeException>(() => MemoryBank.Load(wide, path))!;
        Assert.That(e.Message, Does.Contain("different base model").And.Contain("n_embd=64").And.Contain("n_embd=96"));
    }

    [Test]
    public void BadBankFilesAreRefusedClearly()
    {
        using var bank = MemoryBank.Create(_model, Small);
        var path = Path.Combine(_dir, "bank.mome");
        bank.Save(path);
        var good = File.ReadAllBytes(path);
        void Refused(string name, byte[] bytes, string fragment)
        {
            var p = Path.Combine(_dir, name);
            File.WriteAllBytes(p, bytes);
            var e = Assert.Throws<MomeException>(() => MemoryBank.Load(_model, p).Dispose(), name)!;
            Assert.That(e.Message, Does.Contain(p).And.Contain(fragment), name);
        }
        Refused("empty.mome", [], "too short");
        Refused("truncated.mome", good[..(good.Length / 2)], "does not fit");
        Refused("header.mome", good[..100], "runs past the end");
        var hostile = (byte[])good.Clone();
        BitConverter.GetBytes(ulong.MaxValue - 7).CopyTo(hostile, 0);
        Refused("hostile.mome", hostile, "runs past the end");
        var json = (byte[])good.Clone();
        json[9] = (byte)'[';
        Refused("json.mome", json, "malformed JSON");
        var notBank = Encoding.ASCII.GetBytes("{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}    ");
        Refused("other.safetensors", [.. BitConverter.GetBytes((ulong)notBank.Length), .. notBank, 0, 0, 0, 0], "not a Mome bank");
        var e = Assert.Throws<MomeException>(() => MemoryBank.Load(_model, _dir))!;
        Assert.That(e.Message, Does.Contain("is a directory"));
    }

    [Test]
    public void BadOptionsAreRefusedClearly()
    {
        void Refused(MemoryOptions options, string fragment)
        {
            var e = Assert.Throws<MomeException>(() => MemoryBank.Create(_model, options).Dispose())!;
            Assert.That(e.Code, Is.EqualTo(MomeErrorCode.InvalidArgument));
            Assert.That(e.Message, Does.Contain(fragment));
        }
        Refused(Small with { Experts = 0 }, "n_experts");
        Refused(Small with { TopK = 0 }, "top_k");
        Refused(Small with { Experts = 4, TopK = 8 }, "more than the 4 experts");
        Refused(Small with { Rank = 0 }, "rank");
        Refused(Small with { KeyDim = 0 }, "key_dim");
        Refused(Small with { Layers = [2] }, "layer 2 is out of range");
        Refused(Small with { Layers = [1, 1] }, "listed twice");
        Refused(Small with { Experts = 1L << 30, Rank = 256 }, "GiB");
        Refused(Small with { Experts = 1L << 31 }, "n_experts = 2147483648 is outside 1..2147483647 (expert indices are int32)");
        Refused(Small with { Router = RouterKind.Product, Experts = 4000 }, "square");
        Refused(Small with { Temperature = 0 }, "temperature");
        Refused(Small with { Temperature = float.NaN }, "temperature");
    }

    [Test]
    public void UnwritablePathIsAnIoErrorAndLosesNothing()
    {
        using var bank = MemoryBank.Create(_model, Small);
        var e = Assert.Throws<MomeException>(() => bank.Save(Path.Combine(_dir, "missing", "bank.mome")))!;
        Assert.That(e.Code, Is.EqualTo(MomeErrorCode.IoError));
        Assert.That(Directory.GetFiles(_dir).Select(Path.GetFileName), Is.EquivalentTo(new[] { "m.gguf" }));
    }

    [Test]
    public void NonFiniteExpertValuesAreRefused()
    {
        using var bank = MemoryBank.Create(_model, Small);
        var values = new float[64];
        values[3] = float.NaN;
        var e = Assert.Throws<MomeException>(() => bank.SetExpert(0, 1, values, null))!;
        Assert.That(e.Message, Does.Contain("not finite"));
        Assert.That(bank.GetExpert(0, 1).A[3], Is.Not.NaN);
    }

    [Test]
    public void ASaveKilledMidwayLeavesThePreviousBankLoadable()
    {
        var path = Path.Combine(_dir, "bank.mome");
        using (var bank = MemoryBank.Create(_model, Small))
        {
            Randomise(bank, 9);
            bank.Save(path);
        }
        var before = File.ReadAllBytes(path);

        // A child process (the CLI) overwrites the same path with a 640 MiB bank; it is
        // killed while its temporary file is being written.
        var cli = Path.Combine(AppContext.BaseDirectory, "Mome.Cli.dll");
        var start = new System.Diagnostics.ProcessStartInfo("dotnet",
            [cli, "memory", "create", "--model", _model.Path, "--out", path, "--experts", "1048576", "--key-dim", "32"])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        using var child = System.Diagnostics.Process.Start(start)!;
        var deadline = DateTime.UtcNow.AddMinutes(3);
        string? temp = null;
        while (DateTime.UtcNow < deadline && !child.HasExited)
        {
            temp = Directory.GetFiles(_dir, "bank.mome.tmp-*").FirstOrDefault(f => new FileInfo(f).Length > (64 << 20));
            if (temp is not null) break;
            Thread.Sleep(5);
        }
        Assert.That(temp, Is.Not.Null, "the child never got to writing: " + (child.HasExited ? child.StandardError.ReadToEnd() : "timeout"));
        child.Kill(entireProcessTree: true);
        child.WaitForExit();

        Assert.That(File.ReadAllBytes(path), Is.EqualTo(before), "the previous bank is untouched");
        using var reloaded = MemoryBank.Load(_model, path);
        Assert.That(reloaded.Options.Experts, Is.EqualTo(Small.Experts));
    }

    internal static (JsonObject Header, long DataStart) ReadHeader(string path)
    {
        var bytes = File.ReadAllBytes(path);
        var length = (long)BitConverter.ToUInt64(bytes, 0);
        return (JsonNode.Parse(Encoding.UTF8.GetString(bytes, 8, (int)length))!.AsObject(), 8 + length);
    }
}
