using System.Diagnostics;

namespace Mome.Bench;

/// <summary>One grouped-LoRA configuration's measured speed (median of the repeats).</summary>
public sealed record LoraResult(string WeightType, int Sequences, int TokensPerSequence, int TopK, int Rank, int Dim, int Threads,
    double Milliseconds, double ExpertGBps, double CopyFraction);

/// <summary>
/// Grouped LoRA on the CPU: B sequences, each routed to k random experts of a 65,536-expert
/// table, one token each (decode) or 32 (prefill, the segmented form reusing the gathered
/// experts). Reports GB/s of expert weights applied (A and B rows gathered per segment) and
/// that rate as a fraction of a measured memory copy.
/// </summary>
public static class LoraComparison
{
    public static IReadOnlyList<LoraResult> Run(IEnumerable<TensorType> types, IEnumerable<int> threads, int repeats, double copyGBps,
        Action<string>? progress = null)
    {
        const int experts = 1 << 16, dim = 768, topK = 32;
        var results = new List<LoraResult>();
        var random = new Random(1);
        foreach (var type in types)
            foreach (var rank in new[] { 1, 4 })
            {
                var elem = type == TensorType.F32 ? 4 : 2;
                var bytes = (long)experts * rank * dim * elem;
                var a = new byte[bytes];
                var b = new byte[bytes];
                Fill(a, type, random);
                Fill(b, type, random);
                var tables = new LoraTables(type, experts, dim, rank, a, b);
                foreach (var (sequences, perSequence) in new[] { (1, 1), (16, 1), (64, 1), (16, 32) })
                    foreach (var t in threads)
                    {
                        progress?.Invoke($"lora {type} r={rank} B={sequences}x{perSequence} threads={t}");
                        var tokens = sequences * perSequence;
                        var u = Enumerable.Range(0, tokens * dim).Select(_ => (float)random.NextDouble()).ToArray();
                        var output = new float[tokens * dim];
                        var offsets = Enumerable.Range(0, sequences + 1).Select(s => (long)s * perSequence).ToArray();
                        var indices = Enumerable.Range(0, sequences * topK).Select(_ => random.Next(experts)).ToArray();
                        var weights = Enumerable.Repeat(1f / topK, sequences * topK).ToArray();
                        var times = new List<double>();
                        for (var r = 0; r <= repeats; r++)
                        {
                            var watch = Stopwatch.StartNew();
                            MomeOps.LoraApply(tables, u, tokens, offsets, indices, weights, topK, 1f, output, t);
                            if (r > 0) times.Add(watch.Elapsed.TotalSeconds);
                        }
                        times.Sort();
                        var seconds = times[times.Count / 2];
                        var applied = (double)sequences * topK * rank * dim * elem * 2; // A and B rows, gathered once per segment
                        var gbps = applied / seconds / 1e9;
                        results.Add(new LoraResult(type.ToString(), sequences, perSequence, topK, rank, dim, t, seconds * 1e3, gbps, gbps / copyGBps));
                    }
            }
        return results;
    }

    /// <summary>
    /// Uniform values in [-0.05, 0.05), the scale of trained expert rows, in the table's type.
    /// (Random bytes with their top exponent bits cleared, used before, made most products
    /// subnormal, so the benchmark measured the CPU's subnormal assists rather than bandwidth.)
    /// </summary>
    private static void Fill(byte[] table, TensorType type, Random random)
    {
        var elem = type == TensorType.F32 ? 4 : 2;
        for (var i = 0; i < table.Length; i += elem)
        {
            var x = (float)(random.NextDouble() * 0.1 - 0.05);
            if (type == TensorType.F32) BitConverter.TryWriteBytes(table.AsSpan(i, 4), x);
            else
            {
                var h = type == TensorType.F16 ? BitConverter.HalfToUInt16Bits((Half)x) : (ushort)(BitConverter.SingleToUInt32Bits(x) >> 16);
                table[i] = (byte)h;
                table[i + 1] = (byte)(h >> 8);
            }
        }
    }

    /// <summary>Median GB/s of copying 1 GiB (read + write counted once, as "copy bandwidth").</summary>
    public static double MeasureCopyGBps(int repeats = 5)
    {
        var source = new byte[1L << 30];
        var target = new byte[1L << 30];
        new Random(2).NextBytes(source.AsSpan(0, 1 << 20));
        var times = new List<double>();
        for (var r = 0; r <= repeats; r++)
        {
            var watch = Stopwatch.StartNew();
            source.AsSpan().CopyTo(target);
            if (r > 0) times.Add(watch.Elapsed.TotalSeconds);
        }
        times.Sort();
        return source.Length / times[times.Count / 2] / 1e9;
    }
}
