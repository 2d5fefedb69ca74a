using System.Diagnostics;
using LLama;
using LLama.Common;
using LLama.Native;

namespace Mome.Bench;

/// <summary>One configuration's measured speeds: medians over the repeats.</summary>
public sealed record ForwardResult(string Model, string WeightType, int Threads, int PromptTokens, int DecodeTokens,
    double MomePrefillTps, double LlamaPrefillTps, double MomeDecodeTps, double LlamaDecodeTps, double DecodeWeightBytes)
{
    public double PrefillRatio => MomePrefillTps / LlamaPrefillTps;
    public double DecodeRatio => MomeDecodeTps / LlamaDecodeTps;

    /// <summary>GB/s of weights a decode step reads (<see cref="ForwardComparison.DecodeWeightBytes"/>) at the measured speed.</summary>
    public double MomeDecodeGBps => MomeDecodeTps * DecodeWeightBytes / 1e9;
    public double LlamaDecodeGBps => LlamaDecodeTps * DecodeWeightBytes / 1e9;
}

/// <summary>
/// Prefill and decode speed of Mome and llama.cpp (through LLamaSharp) on the same GGUF,
/// same thread count, flash attention off, F32 KV cache, run side by side in one process:
/// the two engines alternate within each repeat so machine noise hits both alike.
/// </summary>
public static class ForwardComparison
{
    private static bool _logConfigured;

    public static ForwardResult Run(string modelPath, string label, int threads, int promptTokens, int decodeTokens, int repeats,
        Action<string>? progress = null)
    {
        if (!_logConfigured && !NativeLibraryConfig.LLama.LibraryHasLoaded)
        {
            NativeLibraryConfig.All.WithLogCallback((_, _) => { });
            _logConfigured = true;
        }
        using var model = MomeModel.Open(modelPath);
        var vocab = (int)model.Config.VocabSize;
        var rng = new Random(1);
        var prompt = Enumerable.Range(0, promptTokens).Select(_ => rng.Next(3, vocab)).ToArray();
        var continuation = Enumerable.Range(0, decodeTokens).Select(_ => rng.Next(3, vocab)).ToArray();
        var context = promptTokens + decodeTokens + 8;

        using var session = new MomeSession(model, new SessionOptions { ContextLength = context, Threads = threads });
        var parameters = new ModelParams(modelPath)
        {
            ContextSize = (uint)context, BatchSize = (uint)context, UBatchSize = (uint)context, GpuLayerCount = 0,
            Threads = threads, BatchThreads = threads, FlashAttention = false,
            TypeK = GGMLType.GGML_TYPE_F32, TypeV = GGMLType.GGML_TYPE_F32,
        };
        using var weights = LLamaWeights.LoadFromFile(parameters);
        using var llama = weights.CreateContext(parameters);

        var momePrefill = new List<double>();
        var momeDecode = new List<double>();
        var llamaPrefill = new List<double>();
        var llamaDecode = new List<double>();
        for (var r = 0; r < repeats + 1; r++) // the first round warms caches and is dropped
        {
            progress?.Invoke($"{label}, {threads} thread(s): round {r + 1}/{repeats + 1}");
            var (mp, md) = TimeMome(session, prompt, continuation);
            var (lp, ld) = TimeLlama(llama, prompt, continuation);
            if (r == 0) continue;
            momePrefill.Add(mp);
            momeDecode.Add(md);
            llamaPrefill.Add(lp);
            llamaDecode.Add(ld);
        }
        return new ForwardResult(Path.GetFileName(modelPath), label, threads, promptTokens, decodeTokens,
            promptTokens / Median(momePrefill), promptTokens / Median(llamaPrefill),
            decodeTokens / Median(momeDecode), decodeTokens / Median(llamaDecode), DecodeWeightBytes(model));
    }

    /// <summary>
    /// Bytes of weights one decode step reads: every tensor once, except the token embedding, of
    /// which a step reads one row, or all of it when the output head shares the table.
    /// </summary>
    public static double DecodeWeightBytes(MomeModel model)
    {
        const string embedding = "token_embd.weight";
        var tensors = model.Tensors;
        var tied = tensors.All(t => t.Name != "output.weight");
        double bytes = 0;
        foreach (var t in tensors)
            bytes += t.Name != embedding || tied ? t.SizeBytes : (double)t.SizeBytes / t.Shape[^1];
        return bytes;
    }

    private static (double Prefill, double Decode) TimeMome(MomeSession session, int[] prompt, int[] continuation)
    {
        session.Clear();
        var watch = Stopwatch.StartNew();
        session.Evaluate(prompt);
        var prefill = watch.Elapsed.TotalSeconds;
        watch.Restart();
        foreach (var token in continuation) session.Evaluate([token]);
        return (prefill, watch.Elapsed.TotalSeconds);
    }

    private static (double Prefill, double Decode) TimeLlama(LLamaContext context, int[] prompt, int[] continuation)
    {
        context.NativeHandle.MemoryClear();
        var batch = new LLamaBatch();
        for (var i = 0; i < prompt.Length; i++) batch.Add(prompt[i], i, LLamaSeqId.Zero, i == prompt.Length - 1);
        var watch = Stopwatch.StartNew();
        Check(context.NativeHandle.Decode(batch));
        var prefill = watch.Elapsed.TotalSeconds;
        watch.Restart();
        for (var i = 0; i < continuation.Length; i++)
        {
            batch.Clear();
            batch.Add(continuation[i], prompt.Length + i, LLamaSeqId.Zero, true);
            Check(context.NativeHandle.Decode(batch));
        }
        return (prefill, watch.Elapsed.TotalSeconds);
    }

    private static void Check(DecodeResult result)
    {
        if (result != DecodeResult.Ok) throw new InvalidOperationException($"llama.cpp decode failed: {result}");
    }

    private static double Median(List<double> xs)
    {
        var s = xs.Order().ToList();
        return s.Count % 2 == 1 ? s[s.Count / 2] : (s[s.Count / 2 - 1] + s[s.Count / 2]) / 2;
    }
}
