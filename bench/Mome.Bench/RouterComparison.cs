using System.Diagnostics;
using System.Text.Json.Nodes;

namespace Mome.Bench;

/// <summary>One batch size and thread count: queries/s of each engine (null when absent).</summary>
public sealed record RouterResult(int Batch, int Threads, double MomeF32Qps, double MomeBf16Qps, double? FaissQps, double ProductQps,
    double F32BandwidthFraction, double Bf16BandwidthFraction, bool TopMatchesFaiss);

/// <summary>
/// The memory router at scale, side by side in one run: Mome's flat router over F32 and BF16
/// keys, FAISS IndexFlatIP over the same F32 keys (the mome_faiss_bench peer, when FAISS was
/// found at build time), and Mome's product-key router at the same number of experts.
/// Keys and queries come from one seeded generator shared with the peer.
/// </summary>
public static class RouterComparison
{
    /// <summary>The FAISS peer, built beside libmome only when libfaiss-dev was installed at configure time.</summary>
    public static string FaissPeerPath => Path.Combine(AppContext.BaseDirectory, "mome_faiss_bench");

    public static bool FaissPeerPresent => File.Exists(FaissPeerPath);

    /// <summary>What a user without FAISS reads: why the column is empty and how to fill it.</summary>
    public const string FaissAbsentMessage =
        "FAISS is absent: the native build found no libfaiss-dev, so the FAISS IndexFlatIP peer was not built. " +
        "To compare with it: sudo apt-get install libfaiss-dev libopenblas-dev, then rm -rf build/native and build again.";

    /// <summary>Splitmix64 of (seed, index), top 24 bits mapped to [-1, 1): the same values
    /// native/peer/faiss_bench.cpp generates.</summary>
    public static float SeededValue(ulong seed, ulong index)
    {
        var z = seed * 0x9e3779b97f4a7c15ul + index + 1;
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ul;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebul;
        z ^= z >> 31;
        return (z >> 40) / 8388608.0f - 1.0f;
    }

    public static IReadOnlyList<RouterResult> Run(long experts, int keyDim, int topK, IEnumerable<int> batches, IEnumerable<int> threads,
        int repeats, double copyGBps, Action<string>? progress = null)
    {
        const ulong seed = 7;
        progress?.Invoke($"generating {experts} x {keyDim} keys");
        var f32 = new float[experts * keyDim];
        Parallel.For(0L, f32.LongLength, i => f32[i] = SeededValue(seed, (ulong)i));
        var f32Bytes = new byte[f32.LongLength * 4];
        Buffer.BlockCopy(f32, 0, f32Bytes, 0, f32Bytes.Length);
        var bf16Bytes = new byte[f32.LongLength * 2];
        for (long i = 0; i < f32.LongLength; i++)
        {
            var bits = BitConverter.SingleToUInt32Bits(f32[i]);
            var rounded = (ushort)((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16);
            bf16Bytes[2 * i] = (byte)rounded;
            bf16Bytes[2 * i + 1] = (byte)(rounded >> 8);
        }
        f32 = [];
        var nSub = (long)Math.Round(Math.Sqrt(experts));
        var productKeys = new byte[2 * nSub * (keyDim / 2) * 4];
        Buffer.BlockCopy(f32Bytes, 0, productKeys, 0, productKeys.Length);

        var flatF32 = new RouterSpec(RouterKind.Flat, TensorType.F32, experts, keyDim, f32Bytes, topK);
        var flatBf16 = new RouterSpec(RouterKind.Flat, TensorType.BF16, experts, keyDim, bf16Bytes, topK);
        var product = new RouterSpec(RouterKind.Product, TensorType.F32, nSub * nSub, keyDim, productKeys, topK);
        var peer = FaissPeerPath;
        var results = new List<RouterResult>();
        foreach (var batch in batches)
        {
            var queries = new float[batch * keyDim];
            for (var i = 0; i < queries.Length; i++) queries[i] = SeededValue(seed + 1, (ulong)i);
            foreach (var t in threads)
            {
                progress?.Invoke($"router B={batch} threads={t}");
                var f32Time = Median(() => MomeOps.Route(flatF32, queries, t), repeats);
                var bf16Time = Median(() => MomeOps.Route(flatBf16, queries, t), repeats);
                var productTime = Median(() => MomeOps.Route(product, queries, t), repeats);
                var top = MomeOps.Route(flatF32, queries, t).Indices.Take(topK).ToArray();
                double? faissQps = null;
                var matches = false;
                if (File.Exists(peer))
                {
                    var faiss = RunPeer(peer, experts, keyDim, batch, topK, t, repeats, seed);
                    faissQps = (double)faiss["qps"]!;
                    matches = faiss["first_indices"]!.AsArray().Select(x => (int)x!).SequenceEqual(top);
                }
                results.Add(new RouterResult(batch, t, batch / f32Time, batch / bf16Time, faissQps, batch / productTime,
                    f32Bytes.LongLength / f32Time / 1e9 / copyGBps, bf16Bytes.LongLength / bf16Time / 1e9 / copyGBps, matches));
            }
        }
        return results;
    }

    private static JsonNode RunPeer(string peer, long n, int d, int nq, int k, int threads, int repeats, ulong seed)
    {
        var start = new ProcessStartInfo(peer, [$"{n}", $"{d}", $"{nq}", $"{k}", $"{threads}", $"{repeats}", $"{seed}"])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        start.Environment["OMP_WAIT_POLICY"] = "PASSIVE";
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        if (process.ExitCode != 0) throw new InvalidOperationException($"{peer} failed: {process.StandardError.ReadToEnd()}");
        return JsonNode.Parse(output)!;
    }

    private static double Median(Action run, int repeats)
    {
        run(); // warm-up
        var times = new List<double>();
        for (var r = 0; r < repeats; r++)
        {
            var watch = Stopwatch.StartNew();
            run();
            times.Add(watch.Elapsed.TotalSeconds);
        }
        times.Sort();
        return times[times.Count / 2];
    }
}
