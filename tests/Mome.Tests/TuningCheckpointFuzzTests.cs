namespace Mome.Tests;

/// <summary>The native tuner's state file ("&lt;bank&gt;.state", native/src/memory/tuner_state.h),
/// fuzzed in process through the API that reads it: random mutations of a real checkpoint's
/// state (bytes overwritten, inserted, removed, truncated), half of them with the CRC-32C
/// trailer recomputed so that the parser behind the checksum is reached. Resuming must
/// succeed (with some outcome) or throw a MomeException with FormatError naming the file; any
/// other exception, or a crash, is a bug. A failed resume must leave the tuner fresh.</summary>
public sealed class TuningCheckpointFuzzTests
{
    private string _dir = "";

    [SetUp]
    public void SetUp() => _dir = TestPaths.NewTempDir();

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, recursive: true);

    private static byte[] Mutate(byte[] original, Random rng)
    {
        var bytes = original.ToList();
        for (var n = rng.Next(1, 4); n > 0 && bytes.Count > 0; n--)
        {
            var at = rng.Next(bytes.Count);
            switch (rng.Next(5))
            {
                case 0: bytes[at] = (byte)rng.Next(256); break;
                case 1: bytes[at] ^= (byte)(1 << rng.Next(8)); break;
                case 2: bytes.Insert(at, (byte)rng.Next(256)); break;
                case 3: bytes.RemoveRange(at, Math.Min(rng.Next(1, 16), bytes.Count - at)); break;
                default: bytes.RemoveRange(at, bytes.Count - at); break;
            }
        }
        return [.. bytes];
    }

    [Test]
    public async Task RandomMutationsOfAStateResumeOrFailCleanly()
    {
        var modelPath = Path.Combine(_dir, "m.gguf");
        MomeModel.CreateSynthetic(SyntheticModelConfig.Preset("tiny") with { InitStd = 0.25f }, modelPath, seed: 3);
        using var model = MomeModel.Open(modelPath);
        var bankPath = Path.Combine(_dir, "bank.mome");
        var options = new TuningOptions { Epochs = 2, Threads = 1, BatchSize = 4, CheckpointPath = bankPath, GateThreshold = MemoryGate.Off };
        var facts = SyntheticFacts.Random(6, seed: 4);
        using (var bank = MemoryBank.Create(model, new MemoryOptions { Experts = 256, KeyDim = 16, TopK = 8, Rank = 2, Seed = 9 }))
            await new MemoryTuner(bank, options).TuneAsync(facts);
        var statePath = MemoryTuner.StatePath(bankPath);
        File.Delete(statePath + ".prev");
        var original = File.ReadAllBytes(statePath);
        using var loaded = MemoryBank.Load(model, bankPath);
        var encoded = facts.Select(new MemoryTuner(loaded).Encode).ToList();

        var iterations = int.TryParse(Environment.GetEnvironmentVariable("MOME_FUZZ_ITERATIONS"), out var n) ? n : 2000;
        var seed = int.TryParse(Environment.GetEnvironmentVariable("MOME_TEST_SEED"), out var s) ? s : 2026;
        TestContext.Out.WriteLine($"{iterations} mutations, seed {seed} (MOME_FUZZ_ITERATIONS, MOME_TEST_SEED)");
        var rng = new Random(seed);
        int resumed = 0, refused = 0, pastChecksum = 0;
        var unclean = new List<string>();
        for (var i = 0; i < iterations; i++)
        {
            var mutated = Mutate(original, rng);
            if (i % 2 == 0) mutated = Crc32C.Resealed(mutated);
            File.WriteAllBytes(statePath, mutated);
            using var tuner = NativeTuner.Create(loaded, options);
            tuner.AddFacts(encoded);
            try
            {
                tuner.Resume(bankPath);
                resumed++;
            }
            catch (MomeException e) when (e.Code == MomeErrorCode.FormatError && e.Message.Contains(statePath))
            {
                refused++;
                if (!e.Message.Contains("checksum") && !e.Message.Contains("MOMETUNR")) pastChecksum++;
                if (tuner.Info is { TouchedExperts: not 0 } or { Updates: not 0 }) unclean.Add($"mutation {i}: refused but restored something");
            }
            catch (Exception e)
            {
                unclean.Add($"mutation {i}: {e.GetType().Name}: {e.Message}");
            }
        }
        Assert.That(unclean, Is.Empty, string.Join("\n", unclean.Take(5)));
        Assert.That(pastChecksum, Is.GreaterThan(iterations / 10), "the resealed mutations reach the parser behind the checksum");
        Assert.That(resumed + refused, Is.EqualTo(iterations));
    }
}
