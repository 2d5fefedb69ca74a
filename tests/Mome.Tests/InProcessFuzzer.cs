using System.Text;

namespace Mome.Tests;

/// <summary>
/// A deterministic in-process mutation fuzzer for the managed parsers (SharpFuzz's
/// instrumentation does not run here): inputs are seeds of a corpus mutated 1-8 times
/// (elements overwritten, bit-flipped, inserted, removed, duplicated, repeated into huge
/// inputs, dictionary tokens inserted, corpus entries spliced, tails cut); inputs the target
/// accepts join the corpus, so mutations build on each other. Every input must be accepted or
/// refused with the target's named exception; any other exception is a bug, reported with the
/// iteration and the input saved under the test's work directory. A watchdog fails the run
/// when one input takes longer than <see cref="HangSeconds"/> (a hang, not a speed check).
/// The seed is printed: <c>MOME_FUZZ_SEED</c> replays a run, <c>MOME_FUZZ_ITERATIONS</c>
/// makes a long one.
/// </summary>
internal sealed class InProcessFuzzer<T>
{
    private const int HangSeconds = 30;
    private const int MaxCorpus = 512;

    private readonly List<T[]> _corpus;
    private readonly T[][] _dictionary;
    private readonly Func<Random, T> _randomElement;
    private readonly int _maxLength;

    public InProcessFuzzer(IEnumerable<T[]> seeds, IEnumerable<T[]> dictionary, Func<Random, T> randomElement, int maxLength)
    {
        _corpus = [.. seeds];
        _dictionary = [.. dictionary];
        _randomElement = randomElement;
        _maxLength = maxLength;
        if (_corpus.Count == 0) throw new ArgumentException("the seed corpus is empty", nameof(seeds));
    }

    /// <summary>MOME_FUZZ_ITERATIONS when set, else <paramref name="defaultCount"/>.</summary>
    public static int Iterations(int defaultCount) =>
        int.TryParse(Environment.GetEnvironmentVariable("MOME_FUZZ_ITERATIONS"), out var n) && n > 0 ? n : defaultCount;

    /// <summary>MOME_FUZZ_SEED when set, else a fixed seed, so the default suite is reproducible.</summary>
    public static int Seed() =>
        int.TryParse(Environment.GetEnvironmentVariable("MOME_FUZZ_SEED"), out var s) ? s : 22;

    /// <summary>Runs <paramref name="iterations"/> mutated inputs through <paramref name="target"/>
    /// (which returns true when it accepted the input); <paramref name="isRefusal"/> says which
    /// exceptions are the target's named refusals. Returns (accepted, refused).</summary>
    public (int Accepted, int Refused) Run(string name, int iterations, Func<T[], bool> target, Func<Exception, bool> isRefusal,
        Func<T[], byte[]> save)
    {
        var seed = Seed();
        TestContext.Out.WriteLine($"fuzz {name}: seed {seed} (MOME_FUZZ_SEED), {iterations} iterations (MOME_FUZZ_ITERATIONS)");
        var rng = new Random(seed);
        int accepted = 0, refused = 0;
        var bugs = new List<string>();
        var current = -1;
        T[] input = [];
        var worker = new Thread(() =>
        {
            for (var i = 0; i < iterations; i++)
            {
                var next = Mutate(rng);
                Volatile.Write(ref input, next);
                Volatile.Write(ref current, i);
                try
                {
                    if (target(next))
                    {
                        accepted++;
                        if (_corpus.Count < MaxCorpus) _corpus.Add(next);
                        else _corpus[rng.Next(_corpus.Count)] = next;
                    }
                    else refused++;
                }
                catch (Exception e) when (isRefusal(e))
                {
                    refused++;
                }
                catch (Exception e)
                {
                    bugs.Add($"iteration {i}: {e.GetType().FullName}: {e.Message} (input: {Keep(name, i, save(next))}) {e.StackTrace?.Split('\n')[0].Trim()}");
                    if (bugs.Count >= 5) break;
                }
            }
            Volatile.Write(ref current, iterations);
        }, 64 << 20) { IsBackground = true, Name = "fuzz-" + name };
        var watch = System.Diagnostics.Stopwatch.StartNew();
        worker.Start();
        var seen = -1;
        var since = watch.Elapsed;
        while (!worker.Join(200))
        {
            var now = Volatile.Read(ref current);
            if (now != seen)
            {
                seen = now;
                since = watch.Elapsed;
            }
            else if (watch.Elapsed - since > TimeSpan.FromSeconds(HangSeconds))
                Assert.Fail($"fuzz {name}: iteration {now} has run for more than {HangSeconds} s (input: {Keep(name, now, save(Volatile.Read(ref input)))})");
        }
        TestContext.Out.WriteLine($"fuzz {name}: {accepted} accepted, {refused} refused, {bugs.Count} bugs in {watch.Elapsed.TotalSeconds:F1} s " +
                                  $"({iterations / Math.Max(watch.Elapsed.TotalSeconds, 1e-3):F0} inputs/s)");
        Assert.That(bugs, Is.Empty, string.Join("\n\n", bugs));
        return (accepted, refused);
    }

    private T[] Mutate(Random rng)
    {
        var x = new List<T>(_corpus[rng.Next(_corpus.Count)]);
        for (var n = rng.Next(1, 9); n > 0; n--)
        {
            var at = rng.Next(x.Count + 1);
            var length = x.Count - at == 0 ? 0 : rng.Next(1, Math.Min(32, x.Count - at) + 1);
            switch (rng.Next(9))
            {
                case 0 when at < x.Count: x[at] = _randomElement(rng); break;
                case 1: x.Insert(at, _randomElement(rng)); break;
                case 2: x.RemoveRange(at, length); break;
                case 3: x.InsertRange(at, x.GetRange(at, length)); break;
                case 4:
                    var chunk = x.GetRange(at, length);
                    for (var k = rng.Next(2, 200); k > 0 && x.Count < _maxLength; k--) x.InsertRange(at, chunk);
                    break;
                case 5 when _dictionary.Length > 0: x.InsertRange(at, _dictionary[rng.Next(_dictionary.Length)]); break;
                case 6:
                    var other = _corpus[rng.Next(_corpus.Count)];
                    var from = rng.Next(other.Length + 1);
                    x.InsertRange(at, other.Skip(from).Take(rng.Next(other.Length - from + 1)));
                    break;
                case 7: x.RemoveRange(at, x.Count - at); break;
                default: x.Reverse(at, length); break;
            }
        }
        if (x.Count > _maxLength) x.RemoveRange(_maxLength, x.Count - _maxLength);
        return [.. x];
    }

    private static string Keep(string name, int iteration, byte[] bytes)
    {
        var dir = Path.Combine(TestContext.CurrentContext.WorkDirectory, "fuzz-failures");
        Directory.CreateDirectory(dir);
        var path = Path.Combine(dir, $"{name}-{Seed()}-{iteration}.bin");
        File.WriteAllBytes(path, bytes);
        return path;
    }
}

/// <summary>An accepted input whose result is wrong. Targets throw it instead of asserting,
/// because NUnit assertions on the fuzzer's thread would also mark the test failed past the
/// fuzzer's own report.</summary>
internal sealed class FuzzCheckException(string message) : Exception(message);

/// <summary>Seeds, dictionaries and element generators of the managed parsers' fuzzers.</summary>
internal static class FuzzInputs
{
    /// <summary>Throws <see cref="FuzzCheckException"/> with <paramref name="message"/> unless <paramref name="condition"/>.</summary>
    public static void Check(bool condition, string message)
    {
        if (!condition) throw new FuzzCheckException(message);
    }

    public static byte[] Utf8(string s) => Encoding.UTF8.GetBytes(s);

    /// <summary>A byte, most often printable ASCII, sometimes a UTF-8 lead or continuation byte.</summary>
    public static byte RandomByte(Random rng) => rng.Next(4) switch
    {
        0 => (byte)rng.Next(256),
        1 => (byte)rng.Next(0x80, 0x100),
        _ => (byte)rng.Next(0x20, 0x7f),
    };

    /// <summary>A UTF-16 code unit: ASCII, any BMP character, or a lone half of a surrogate pair.</summary>
    public static char RandomChar(Random rng) => rng.Next(8) switch
    {
        0 => (char)rng.Next(0xD800, 0xE000),
        1 or 2 => (char)rng.Next(0x10000),
        3 => (char)rng.Next(0x20),
        _ => (char)rng.Next(0x20, 0x7f),
    };

    /// <summary>The input's UTF-16 code units as bytes (for saving a text input).</summary>
    public static byte[] Utf16(char[] text) => System.Runtime.InteropServices.MemoryMarshal.AsBytes(text.AsSpan()).ToArray();
}
