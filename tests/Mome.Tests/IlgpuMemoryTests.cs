using System.Text.Json.Nodes;
using Mome.Cli.Commands;
using Mome.Ilgpu;

namespace Mome.Tests;

/// <summary>A natively tuned bank run by the ILGPU engine (CPU accelerator): the same logits,
/// greedy answers and exact recall as the native engine, and the same errors for bad bank files.</summary>
public sealed class IlgpuMemoryTests
{
    private MemorisedBank _memorised = null!;
    private IlgpuModel _model = null!;
    private IlgpuBank _bank = null!;

    [OneTimeSetUp]
    public async Task OneTimeSetUp()
    {
        _memorised = await MemorisedBank.CreateAsync();
        _model = IlgpuModel.Open(_memorised.ModelPath);
        _bank = IlgpuBank.Load(_model, _memorised.BankPath);
    }

    [OneTimeTearDown]
    public void OneTimeTearDown()
    {
        _bank.Dispose();
        _model.Dispose();
        _memorised.Dispose();
    }

    private int[] PromptOf(Fact f) => _model.Tokenizer.Encode(_bank.PromptOf(f.Question)!);

    // The bank's delta amplifies float rounding: on this fixture the native engine's own two
    // backends (SIMD float vs the plain reference, which sums the LoRA in double) differ by
    // 3e-5..5.6e-5 with the bank against 5e-6..1.3e-5 without it, and ILGPU (plain float loops)
    // by 7.9e-5..1.43e-4 from native (1.3e-5..1.8e-5 without the bank; measured 2026-12-02).
    // So the bound is relative to the logits' size: 2e-5 x the largest |logit| (2.6e-4 at 13),
    // far below what a wrong route, weight, gate or delta does (> 1e-2, checked first).
    private const double RelativeBound = 2e-5;

    [Test]
    public void LogitsWithTheBankMatchNative()
    {
        using var native = new MomeSession(_memorised.Model, new SessionOptions { Memory = _memorised.Bank });
        using var reference = new MomeSession(_memorised.Model, new SessionOptions { Memory = _memorised.Bank, Backend = DeviceBackend.CpuReference });
        using var ilgpu = new IlgpuSession(_model, memory: _bank);
        using var plain = new IlgpuSession(_model);
        foreach (var fact in MemorisedBank.Facts.Reverse())
        {
            var tokens = PromptOf(fact);
            native.Clear();
            reference.Clear();
            ilgpu.Clear();
            plain.Clear();
            var want = native.Evaluate(tokens, allLogits: true);
            var got = ilgpu.Evaluate(tokens, allLogits: true);
            Assert.That(ForwardOracleTests.MaxAbsDiff(got, plain.Evaluate(tokens, allLogits: true)), Is.GreaterThan(1e-2), "the bank changes the logits");
            var scale = want.Max(Math.Abs);
            var diff = ForwardOracleTests.MaxAbsDiff(got, want);
            var nativeSpread = ForwardOracleTests.MaxAbsDiff(reference.Evaluate(tokens, allLogits: true), want);
            TestContext.Out.WriteLine($"{fact.Question}: max |logit| {scale:F2}, ILGPU - native {diff:E3}, native reference - native {nativeSpread:E3}");
            Assert.That(diff, Is.LessThanOrEqualTo(RelativeBound * scale), fact.Question);
        }
    }

    [Test]
    public void GreedyAnswersAreTheNativeOnes()
    {
        foreach (var fact in MemorisedBank.Facts)
            Assert.That(TuningCommands.Ask(_bank, fact.Question), Is.EqualTo(fact.Answer).And.EqualTo(TuningCommands.Ask(_memorised.Bank, fact.Question)));
    }

    [Test]
    public void EvalOnTheIlgpuEngineRecallsEveryFactAsNative()
    {
        var facts = Path.Combine(_memorised.Dir, "facts.jsonl");
        File.WriteAllLines(facts, MemorisedBank.Facts.Select(f => new JsonObject { ["question"] = f.Question, ["answer"] = f.Answer }.ToJsonString()));
        JsonNode Eval(string engine)
        {
            var run = CliTests.Run("eval", "--model", _memorised.ModelPath, "--memory", _memorised.BankPath, "--facts", facts, "--json", "--engine", engine);
            Assert.That(run.Code, Is.EqualTo(0), run.Err);
            return JsonNode.Parse(run.Out)!;
        }
        var native = Eval("native");
        var ilgpu = Eval("ilgpu");
        Assert.That((double)ilgpu["exact_recall"]!, Is.EqualTo(1.0));
        Assert.That((double)ilgpu["exact_recall"]!, Is.EqualTo((double)native["exact_recall"]!));
        Assert.That((double)ilgpu["token_accuracy"]!, Is.EqualTo((double)native["token_accuracy"]!));
    }

    private static void SameError(Action native, Action ilgpu, MomeErrorCode code, string fragment)
    {
        var n = Assert.Throws<MomeException>(() => native())!;
        var i = Assert.Throws<MomeException>(() => ilgpu())!;
        Assert.That(n.Code, Is.EqualTo(code), n.Message);
        Assert.That(n.Message, Does.Contain(fragment));
        Assert.That((i.Code, i.Message), Is.EqualTo((n.Code, n.Message)));
    }

    [Test]
    public void BadBankFilesGiveTheNativeErrors()
    {
        var good = File.ReadAllBytes(_memorised.BankPath);
        var (header, dataStart) = MemoryBankTests.ReadHeader(_memorised.BankPath);
        var aStart = dataStart + (long)header["layers.0.a"]!["data_offsets"]![0]!;
        var cases = new (string Name, byte[] Bytes, MomeErrorCode Code, string Fragment)[]
        {
            ("short.mome", good[..5], MomeErrorCode.FormatError, "too short"),
            ("long-header.mome", [.. BitConverter.GetBytes(1UL << 40), .. good[8..]], MomeErrorCode.FormatError, "runs past the end"),
            ("not-json.mome", [.. good[..8], .. "[ nope"u8.ToArray(), .. good[14..]], MomeErrorCode.FormatError, "malformed JSON header"),
            ("flipped.mome", [.. good[..(int)(aStart + 3)], (byte)(good[aStart + 3] ^ 0x10), .. good[(int)(aStart + 4)..]], MomeErrorCode.FormatError,
                "checksum mismatch in tensor 'layers.0.a'"),
            ("cut.mome", good[..^4], MomeErrorCode.FormatError, "does not fit"),
        };
        foreach (var (name, bytes, code, fragment) in cases)
        {
            var path = Path.Combine(_memorised.Dir, name);
            File.WriteAllBytes(path, bytes);
            SameError(() => MemoryBank.Load(_memorised.Model, path).Dispose(), () => IlgpuBank.Load(_model, path).Dispose(), code, fragment);
        }
    }

    [Test]
    public void ABankOfAnotherModelIsRefused()
    {
        var other = Path.Combine(_memorised.Dir, "other.gguf");
        MomeModel.CreateSynthetic(SyntheticModelConfig.Preset("tiny") with { InitStd = 0.25f }, other, seed: 10);
        using var native = MomeModel.Open(other);
        using var ilgpu = IlgpuModel.Open(other);
        SameError(() => MemoryBank.Load(native, _memorised.BankPath).Dispose(), () => IlgpuBank.Load(ilgpu, _memorised.BankPath).Dispose(),
            MomeErrorCode.InvalidArgument, "same shape, other weights");
    }
}
