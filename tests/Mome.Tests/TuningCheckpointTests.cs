using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;

namespace Mome.Tests;

/// <summary>Checkpoints of memory tuning: resuming continues exactly where a run stopped
/// (bank, position, optimiser, schedule, router phase), damaged or mismatched state files are
/// recognised, and killing `mome tune` at any moment never leaves a corrupt bank.</summary>
[NonParallelizable]
public sealed class TuningCheckpointTests
{
    private string _dir = "";

    [SetUp]
    public void SetUp() => _dir = TestPaths.NewTempDir();

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, recursive: true);

    private static readonly MemoryOptions SmallBank = new() { Experts = 1024, KeyDim = 32, TopK = 16, Rank = 2, Alpha = 4, Seed = 9 };

    private MomeModel TinyModel()
    {
        var path = Path.Combine(_dir, "m.gguf");
        MomeModel.CreateSynthetic(SyntheticModelConfig.Preset("tiny") with { InitStd = 0.25f }, path, seed: 3);
        return MomeModel.Open(path);
    }

    // Every trainable value of the bank: each expert's A and B, W_q and the keys.
    private static List<float[]> Snapshot(MemoryBank bank)
    {
        var values = new List<float[]>();
        for (var e = 0; e < bank.Options.Experts; e++)
        {
            var (a, b) = bank.GetExpert(0, e);
            values.Add(a);
            values.Add(b);
        }
        var router = bank.Router();
        values.Add(router.GetQueryProjection());
        values.Add(router.GetKeyRows(0, (int)router.KeyRows));
        return values;
    }

    [Test]
    public async Task ResumingContinuesExactlyWhereTheRunStopped()
    {
        using var model = TinyModel();
        var facts = SyntheticFacts.Random(30, seed: 4);
        var options = new TuningOptions
        {
            Epochs = 4, Threads = 1, RouterEpochs = 1, Schedule = LearningRateSchedule.Cosine, WarmupSteps = 10,
        };

        using var straight = MemoryBank.Create(model, SmallBank);
        var whole = await new MemoryTuner(straight, options).TuneAsync(facts);

        // The same run, checkpointing after every fact, cancelled during its third epoch.
        var path = Path.Combine(_dir, "bank.mome");
        var checkpointed = options with { CheckpointPath = path, CheckpointInterval = TimeSpan.Zero };
        using (var first = MemoryBank.Create(model, SmallBank))
        {
            using var cancel = new CancellationTokenSource();
            var progress = new InlineProgress<TuningProgress>(p =>
            {
                if (p.Epoch == 3) cancel.Cancel();
            });
            await Assert.CatchAsync<OperationCanceledException>(() => new MemoryTuner(first, checkpointed).TuneAsync(facts, progress, cancel.Token));
        }
        using var resumed = MemoryBank.Load(model, path);
        var notes = new List<string>();
        var rest = await new MemoryTuner(resumed, checkpointed with { Resume = true })
            .TuneAsync(facts, new InlineProgress<TuningProgress>(p => { if (p.Note is { } n) notes.Add(n); }));
        Assert.That(notes, Has.Count.EqualTo(1));
        Assert.That(notes[0], Does.StartWith("resuming at epoch 3"));
        Assert.That(rest.Epochs, Is.EqualTo(whole.Epochs));
        Assert.That(rest.Recall, Is.EqualTo(whole.Recall));
        Assert.That(rest.Loss, Is.EqualTo(whole.Loss).Within(1e-9));
        var expected = Snapshot(straight);
        var actual = Snapshot(resumed);
        for (var i = 0; i < expected.Count; i++)
            Assert.That(actual[i], Is.EqualTo(expected[i]), $"table {i} differs from the uninterrupted run");
        using var fresh = MemoryBank.Create(model, SmallBank);
        Assert.That(expected[^2], Is.Not.EqualTo(fresh.Router().GetQueryProjection()), "the router phase changed W_q");
    }

    [Test]
    public async Task AStateFileFromAnotherBankVersionIsNotUsedAndADamagedOneIsNamed()
    {
        using var model = TinyModel();
        var facts = SyntheticFacts.Random(10, seed: 4);
        var path = Path.Combine(_dir, "bank.mome");
        var options = new TuningOptions { Epochs = 2, Threads = 1, CheckpointPath = path };
        var firstBank = Path.Combine(_dir, "first.mome");
        using (var bank = MemoryBank.Create(model, SmallBank))
        {
            await new MemoryTuner(bank, options).TuneAsync(facts);
            File.Copy(path, firstBank);
            // A crash between the bank's write and the state's: the bank moved on alone.
            bank.SetExpert(0, 0, new float[bank.Options.Rank * model.Config.EmbeddingLength], null);
            bank.Save(path);
        }
        var statePath = path + ".state";
        var good = File.ReadAllBytes(statePath);

        async Task<List<string>> ResumeNotes(int epochs)
        {
            using var bank = MemoryBank.Load(model, path);
            var notes = new List<string>();
            await new MemoryTuner(bank, options with { Resume = true, Epochs = epochs })
                .TuneAsync(facts, new InlineProgress<TuningProgress>(p => { if (p.Note is { } n) notes.Add(n); }));
            return notes;
        }
        Assert.That((await ResumeNotes(3)).Single(), Does.Contain("does not belong to the bank").And.Contain("fresh optimiser"));

        // Killed after writing a new state but before renaming its bank into place: the bank
        // is the older one, which the kept previous state names.
        File.Copy(firstBank, path, overwrite: true);
        Assert.That((await ResumeNotes(4)).Single(), Does.StartWith("resuming at epoch 3, fact 1"));

        // Damaged: one flipped byte; truncated; a forged header whose checksum is right but
        // whose row count is absurd (no huge allocation: refused by the file's length).
        good = File.ReadAllBytes(statePath);
        var flipped = (byte[])good.Clone();
        flipped[good.Length / 2] ^= 0x40;
        File.WriteAllBytes(statePath, flipped);
        var e = (await Assert.ThrowsAsync<MomeException>(() => ResumeNotes(9)))!;
        Assert.That(e.Code, Is.EqualTo(MomeErrorCode.FormatError));
        Assert.That(e.Message, Does.Contain(statePath).And.Contain("checksum"));
        File.WriteAllBytes(statePath, good[..20]);
        Assert.That((await Assert.ThrowsAsync<MomeException>(() => ResumeNotes(9)))!.Message, Does.Contain(statePath).And.Contain("truncated"));
        File.WriteAllBytes(statePath, Forge(good, rowCount: ulong.MaxValue / 2));
        Assert.That((await Assert.ThrowsAsync<MomeException>(() => ResumeNotes(9)))!.Message, Does.Contain("do not fit"));

        // A finished budget is said plainly.
        File.WriteAllBytes(statePath, good);
        var budget = (await Assert.ThrowsAsync<ArgumentException>(() => ResumeNotes(1)))!;
        Assert.That(budget.Message, Does.Contain("larger epoch budget"));
    }

    // The state file with its first section's entry count replaced and its checksum redone
    // (the layout is in native/src/memory/tuner_state.h: the sections start after 112 bytes).
    private static byte[] Forge(byte[] state, ulong rowCount)
    {
        var forged = (byte[])state.Clone();
        BitConverter.GetBytes(rowCount).CopyTo(forged, 112);
        return Crc32C.Resealed(forged);
    }

    // The native tuner's rate at every step against the schedules written out here.
    [Test]
    public void LearningRateSchedules()
    {
        using var model = TinyModel();
        using var bank = MemoryBank.Create(model, SmallBank);
        var tuner = new MemoryTuner(bank);
        var facts = SyntheticFacts.Random(8, seed: 2).Select(tuner.Encode).ToList();
        foreach (var (schedule, warmup) in new[] { (LearningRateSchedule.Cosine, 0), (LearningRateSchedule.Linear, 4), (LearningRateSchedule.Constant, 3) })
        {
            var options = new TuningOptions { Schedule = schedule, WarmupSteps = warmup, FinalLearningRateRatio = 0.25f, LearningRate = 2f, Epochs = 3, BatchSize = 3, Threads = 1 };
            using var native = NativeTuner.Create(bank, options);
            native.AddFacts(facts);
            for (var i = 0; i < 9; i++)
            {
                var updatesBefore = native.Info.Updates;
                var r = native.Step();
                var progress = (r.Epoch + r.FirstFact / 8.0) / 3;
                var decay = schedule switch
                {
                    LearningRateSchedule.Cosine => 0.25 + 0.75 * 0.5 * (1 + Math.Cos(Math.PI * progress)),
                    LearningRateSchedule.Linear => 1 - 0.75 * progress,
                    _ => 1.0,
                };
                var warm = warmup > 0 ? Math.Min(1.0, (updatesBefore + 1.0) / warmup) : 1.0;
                Assert.That(r.LearningRate, Is.EqualTo(2.0 * warm * decay).Within(1e-9), $"{schedule}, step {i + 1}");
            }
        }
    }

    [Test]
    public void KillingTuneAtAnyMomentNeverLeavesACorruptBank()
    {
        using (var model = TinyModel()) { }
        var modelPath = Path.Combine(_dir, "m.gguf");
        var factsPath = Path.Combine(_dir, "facts.jsonl");
        FactsFile.Save(factsPath, SyntheticFacts.Random(60, seed: 8));
        var path = Path.Combine(_dir, "bank.mome");
        // One fact per step: many short steps, each followed by a checkpoint, so that the run
        // lasts long enough for kills to land inside checkpoints.
        string[] Args(bool resume) =>
        [
            "tune", "--model", modelPath, "--facts", factsPath, "--out", path, "--experts", "1024", "--top-k", "16", "--rank", "2",
            "--threads", "1", "--checkpoint-seconds", "0", "--epochs", "60", "--batch", "1", .. resume ? new[] { "--resume" } : [],
        ];
        // The files a checkpoint in progress leaves (see mome_tuner_checkpoint): the bank's
        // side file while it is written, the side file before the rename, the state while it is
        // written. The tuner never reads them, so leftovers of a kill are cleared before each
        // run and their presence after a kill proves that the kill interrupted a checkpoint.
        var phases = new[]
        {
            ("bank write", (Func<bool>)(() => Directory.EnumerateFiles(_dir, "bank.mome.next.tmp-*").Any())),
            ("before the rename", () => File.Exists(path + ".next")),
            ("state write", () => Directory.EnumerateFiles(_dir, "bank.mome.state.tmp-*").Any()),
        };
        bool Interrupted() => phases.Any(p => p.Item2());
        void ClearLeftovers()
        {
            foreach (var f in Directory.EnumerateFiles(_dir, "bank.mome.next*")) File.Delete(f);
            foreach (var f in Directory.EnumerateFiles(_dir, "bank.mome.state.tmp-*")) File.Delete(f);
        }

        var random = new Random(5);
        var midCheckpoint = new List<string>();
        for (var run = 0; run < 12 && midCheckpoint.Count < 5; run++)
        {
            ClearLeftovers();
            using var process = StartCli(Args(run > 0));
            _ = process.StandardOutput.ReadToEndAsync();
            _ = process.StandardError.ReadToEndAsync();
            // A random moment of the run, then the next checkpoint in the phase drawn for this kill.
            Thread.Sleep(500 + random.Next(2000));
            var (phase, inProgress) = phases[random.Next(phases.Length)];
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
            while (!process.HasExited && !inProgress() && DateTime.UtcNow < deadline) Thread.SpinWait(50);
            if (process.HasExited) break;
            process.Kill(entireProcessTree: true);
            process.WaitForExit();
            if (Interrupted()) midCheckpoint.Add(phase);
            if (!File.Exists(path)) continue;
            using var model = MomeModel.Open(modelPath);
            Assert.DoesNotThrow(() => MemoryBank.Load(model, path).Dispose(), $"the bank after kill {run + 1} ({phase}) loads");
        }
        TestContext.Out.WriteLine($"kills inside a checkpoint: {string.Join(", ", midCheckpoint)}");
        Assert.That(midCheckpoint, Has.Count.GreaterThanOrEqualTo(3), "kills that interrupted a checkpoint being written");
        ClearLeftovers();
        Assert.That(File.Exists(path), Is.True, "a checkpoint was completed before the last kill");
        using var last = StartCli(Args(true));
        var output = last.StandardOutput.ReadToEndAsync();
        var error = last.StandardError.ReadToEndAsync();
        Assert.That(last.WaitForExit(TimeSpan.FromMinutes(3)), Is.True, "the resumed run finishes");
        TestContext.Out.WriteLine(output.Result);
        Assert.That(last.ExitCode, Is.EqualTo(0), error.Result);
        Assert.That(output.Result, Does.Match(@"Recall 100\.0 ?%"));
        Assert.That(output.Result, Does.Contain("resuming at epoch"), "the final run continued from a checkpoint");
        using var final = MomeModel.Open(modelPath);
        using var bank = MemoryBank.Load(final, path);
        Assert.That(MemoryEvaluator.Evaluate(bank, FactsFile.Load(factsPath), []).ExactRecall, Is.EqualTo(1.0));
    }

    // `mome` in its own process, from the test's output folder (the CLI project is referenced).
    internal static Process StartCli(string[] args)
    {
        var start = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet")
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
            StandardOutputEncoding = Encoding.UTF8,
        };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "Mome.Cli.dll"));
        foreach (var a in args) start.ArgumentList.Add(a);
        return Process.Start(start)!;
    }

    [Test]
    public void TuneRefusesAnUnwritableOutputBeforeAnyWork()
    {
        using (var model = TinyModel()) { }
        var factsPath = Path.Combine(_dir, "facts.jsonl");
        FactsFile.Save(factsPath, SyntheticFacts.Random(3, seed: 8));
        var output = new StringWriter();
        var error = new StringWriter();
        var code = Mome.Cli.MomeCli.Run(["tune", "--model", Path.Combine(_dir, "m.gguf"), "--facts", factsPath,
            "--out", Path.Combine(_dir, "missing", "bank.mome"), "--experts", "4096"], output, error);
        Assert.That(code, Is.EqualTo(1));
        Assert.That(error.ToString(), Does.Contain("cannot write the bank").And.Contain("does not exist"));
    }

    [Test]
    public async Task TuningOnACudaDeviceThatIsNotThereSaysSo()
    {
        if (MomeRuntime.Devices.Any(d => d.Backend == DeviceBackend.Cuda)) Assert.Ignore("this machine has a CUDA device: backend_ops covers tuning there");
        using var model = TinyModel();
        using var bank = MemoryBank.Create(model, SmallBank);
        var before = bank.GetExpert(0, 3);
        var tuner = new MemoryTuner(bank, new TuningOptions { Backend = DeviceBackend.Cuda, Epochs = 1 });
        var e = (await Assert.ThrowsAsync<MomeException>(() => tuner.TuneAsync(SyntheticFacts.Random(3, seed: 1))))!;
        // Without a GPU: the CUDA library reports no device; with the CPU-only library: no CUDA at all.
        Assert.That(e.Message, Does.Contain("CUDA"));
        Assert.That(bank.GetExpert(0, 3), Is.EqualTo(before), "nothing was trained");
    }

    [Test]
    public void BanksTuningCannotServeAreRefusedBeforeAnyChange()
    {
        using var model = TinyModel();
        using var perToken = MemoryBank.Create(model, SmallBank with { Routing = RoutingMode.Token });
        var e = Assert.Throws<ArgumentException>(() => new MemoryTuner(perToken, new TuningOptions { RouterEpochs = 1 }))!;
        Assert.That(e.Message, Does.Contain("per token"));
        using var twoLayers = MemoryBank.Create(model, SmallBank with { Layers = [0, 1] });
        Assert.That(Assert.Throws<ArgumentException>(() => new MemoryTuner(twoLayers, new TuningOptions { RouterEpochs = 1 }))!.Message,
            Does.Contain("one memory layer"));
        using var highestFirst = MemoryBank.Create(model, SmallBank with { Layers = [1, 0] });
        Assert.That(Assert.Throws<ArgumentException>(() => new MemoryTuner(highestFirst))!.Message, Does.Contain("lowest layer first"));
        Assert.That(perToken.GetCentre(0).All(v => v == 0), Is.True, "the routing centre was not touched");
    }

    // Per-token routing (PEER style) memorises more slowly than per-question routing: experts
    // are shared by every fact's similar tokens (86.7% of 30 facts after 60 epochs here). What
    // must hold exactly is that training routes each token as a session does: the facts the
    // tuner counts as recalled are exactly those greedy generation reproduces.
    [Test]
    public async Task APerTokenRoutingBankIsTrainedOnTheRoutesASessionTakes()
    {
        using var model = TinyModel();
        using var bank = MemoryBank.Create(model, new MemoryOptions
        {
            Experts = 64 * 64, KeyDim = 32, TopK = 16, Rank = 2, Alpha = 4, Router = RouterKind.Product, Routing = RoutingMode.Token, Seed = 3,
        });
        var facts = SyntheticFacts.Random(30, seed: 12);
        var result = await new MemoryTuner(bank, new TuningOptions { Epochs = 60 }).TuneAsync(facts);
        TestContext.Out.WriteLine($"per-token routing: {result.Epochs} epochs, recall {result.Recall:P1}, {result.Elapsed.TotalSeconds:F1} s");
        Assert.That(result.Recall, Is.GreaterThan(0.5), "most facts memorised");
        var tuner = new MemoryTuner(bank);
        using var generator = new TextGenerator(model, new SessionOptions { Memory = bank });
        foreach (var fact in facts)
        {
            var (tokens, answerStart) = tuner.Encode(fact);
            var exactInTraining = bank.FactBackward(tokens, answerStart, null, false, 0).Exact;
            var generated = generator.Generate(tuner.PromptOf(fact.Question), new GenerationOptions { MaxTokens = 40 }).Trim();
            Assert.That(generated == fact.Answer, Is.EqualTo(exactInTraining), $"fact {fact.Question}: generation and training disagree");
        }
    }
}
