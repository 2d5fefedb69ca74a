using System.Security.Cryptography;

namespace Mome.Tests;

/// <summary>The tuning state file is parsed by managed code (TuningCheckpoint), so it is
/// fuzzed in process: random mutations of a valid state file (bytes overwritten, inserted,
/// removed, truncated), half of them with the SHA-256 trailer recomputed so that the parser
/// behind the checksum is reached. Loading must succeed or throw InvalidDataException naming
/// the file; any other exception is a bug.</summary>
public sealed class TuningCheckpointFuzzTests
{
    private const long Experts = 8, KeyRows = 4;
    private const int ExpertLength = 4, KeyRowLength = 2, WqLength = 6;

    private string _dir = "";

    [SetUp]
    public void SetUp() => _dir = TestPaths.NewTempDir();

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, recursive: true);

    private static float[][] Moments(int count, int length, int seed) =>
        Enumerable.Range(0, count).Select(m => Enumerable.Range(0, length).Select(x => seed + m + 0.25f * x).ToArray()).ToArray();

    private byte[] ValidState()
    {
        var path = Path.Combine(_dir, "valid.state");
        new TuningCheckpoint
        {
            Position = new TuningCheckpoint.Header(2, 5, 77, 1.5, 3, 12.25, "FACTS", "BANK"),
            Experts = new() { [1] = Moments(4, ExpertLength, 1), [6] = Moments(4, ExpertLength, 2) },
            KeyRows = new() { [3] = Moments(2, KeyRowLength, 3) },
            Wq = Moments(2, WqLength, 4),
        }.Save(path);
        return File.ReadAllBytes(path);
    }

    private static TuningCheckpoint Load(string path) => TuningCheckpoint.Load(path, Experts, ExpertLength, KeyRows, KeyRowLength, WqLength);

    private static byte[] Rehashed(byte[] bytes)
    {
        if (bytes.Length < 32) return bytes;
        var body = bytes.AsSpan(0, bytes.Length - 32);
        return [.. body, .. SHA256.HashData(body)];
    }

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
    public void TheValidStateLoadsBack()
    {
        var path = Path.Combine(_dir, "copy.state");
        File.WriteAllBytes(path, ValidState());
        var state = Load(path);
        Assert.That(state.Position.Step, Is.EqualTo(77));
        Assert.That(state.Experts.Keys, Is.EquivalentTo(new long[] { 1, 6 }));
        Assert.That(state.Experts[6][3][1], Is.EqualTo(2 + 3 + 0.25f));
        Assert.That(state.Wq![1], Has.Length.EqualTo(WqLength));
    }

    [Test]
    public void RandomMutationsLoadOrFailCleanly()
    {
        var original = ValidState();
        var rng = new Random(2026);
        var path = Path.Combine(_dir, "fuzz.state");
        int loaded = 0, refused = 0, pastChecksum = 0;
        var unclean = new List<string>();
        for (var i = 0; i < 3000; i++)
        {
            var mutated = Mutate(original, rng);
            if (i % 2 == 0) mutated = Rehashed(mutated);
            File.WriteAllBytes(path, mutated);
            try
            {
                Load(path);
                loaded++;
            }
            catch (InvalidDataException e)
            {
                Assert.That(e.Message, Does.Contain(path));
                refused++;
                if (!e.Message.Contains("checksum mismatch") && !e.Message.Contains("not a Mome tuning state")) pastChecksum++;
            }
            catch (Exception e)
            {
                unclean.Add($"mutation {i}: {e.GetType().Name}: {e.Message}");
            }
        }
        Assert.That(unclean, Is.Empty, string.Join("\n", unclean.Take(5)));
        Assert.That(pastChecksum, Is.GreaterThan(300), "the rehashed mutations reach the parser behind the checksum");
        Assert.That(loaded + refused, Is.EqualTo(3000));
    }
}
