using ILGPU;
using ILGPU.Runtime;
using Mome.Engines;
using Mome.Ilgpu.Kernels;
using Mome.Ilgpu.Memory;
using Mome.Ilgpu.Model;

namespace Mome.Ilgpu;

/// <summary>
/// The frozen model's forward pass as ILGPU kernels over a KV cache of one or more sequences:
/// the ILGPU engine's <see cref="IInferenceSession"/>. Batches are validated as the native
/// engine validates them, with the same errors; a memory bank (<see cref="IlgpuBank"/>) runs
/// inside the forward pass as the native session runs it. Not thread-safe.
/// </summary>
public sealed class IlgpuSession : IInferenceSession
{
    private const int DefaultMaxContext = 4096;
    private const int MaxContext = 1 << 24;
    private const long MaxCacheBytes = 64L << 30;

    private readonly IlgpuModel _model;
    private readonly LlamaKernelSet _kernels;
    private readonly List<(MemoryBuffer1D<float, Stride1D.Dense> K, MemoryBuffer1D<float, Stride1D.Dense> V)> _cache = [];
    private readonly int[] _sequenceLength;
    private readonly ModelConfig _c;

    private readonly SessionMemory? _memory;

    /// <summary>A session over <paramref name="model"/>, with <paramref name="memory"/> (a bank
    /// loaded for this model) in its forward pass when given. <see cref="SessionOptions.Memory"/>
    /// (a native bank) is refused: the ILGPU engine runs an <see cref="IlgpuBank"/>.</summary>
    public IlgpuSession(IlgpuModel model, SessionOptions? options = null, IlgpuBank? memory = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        options ??= new SessionOptions();
        if (options.Memory is not null)
            throw new MomeException(MomeErrorCode.Unsupported,
                "the ILGPU engine runs an IlgpuBank, not a native MemoryBank (load the bank file with IlgpuBank.Load)");
        if (memory is not null && !ReferenceEquals(memory.Model, model))
            throw new MomeException(MomeErrorCode.InvalidArgument, "the memory bank belongs to another model handle than the session's");
        _c = model.Config;
        var context = options.ContextLength == 0 ? Math.Min(_c.ContextLength, DefaultMaxContext) : options.ContextLength;
        if (context < 1 || context > MaxContext)
            throw new MomeException(MomeErrorCode.InvalidArgument, $"n_ctx = {context} is outside 1..{MaxContext}");
        if (options.MaxSequences is < 1 or > 4096)
            throw new MomeException(MomeErrorCode.InvalidArgument, $"n_seq_max = {options.MaxSequences} is outside 1..4096");
        if (options.Threads is < 0 or > 1024)
            throw new MomeException(MomeErrorCode.InvalidArgument, $"n_threads = {options.Threads} is outside 0..1024");
        var bytes = (long)options.MaxSequences * context * _c.KvHeadCount * (_c.HeadDim + _c.ValueHeadDim) * _c.LayerCount * sizeof(float);
        if (bytes > MaxCacheBytes)
            throw new MomeException(MomeErrorCode.OutOfMemory,
                $"a KV cache of {options.MaxSequences} sequences x {context} positions needs {bytes / 1073741824.0:F1} GiB (limit {MaxCacheBytes / 1073741824.0:F0} GiB)");
        if (_c.ValueHeadDim != _c.HeadDim)
            throw new MomeException(MomeErrorCode.Unsupported,
                $"key heads of {_c.HeadDim} and value heads of {_c.ValueHeadDim} values: Mome needs equal sizes");
        _model = model;
        _kernels = LlamaKernelSet.For(model.Accelerator);
        ContextLength = (int)context;
        VocabSize = checked((int)_c.VocabSize);
        _sequenceLength = new int[options.MaxSequences];
        _memory = memory is null ? null : new SessionMemory(memory, options.MaxSequences);
        var perLayer = (long)options.MaxSequences * context * KvDim;
        for (var l = 0; l < _c.LayerCount; l++)
        {
            var k = model.Accelerator.Allocate1D<float>(perLayer);
            var v = model.Accelerator.Allocate1D<float>(perLayer);
            _cache.Add((k, v));
        }
    }

    public int VocabSize { get; }
    public int ContextLength { get; }

    private int Embd => (int)_c.EmbeddingLength;
    private int QDim => (int)(_c.HeadCount * _c.HeadDim);
    private int KvDim => (int)(_c.KvHeadCount * _c.HeadDim);
    private int Ff => (int)_c.FeedForwardLength;

    public float[] Decode(ReadOnlySpan<int> tokens, ReadOnlySpan<int> positions, ReadOnlySpan<int> sequenceIds,
        ReadOnlySpan<bool> wantLogits = default, CancellationToken cancellationToken = default)
    {
        SequenceBatch.CheckShape(tokens, positions, sequenceIds, wantLogits);
        var next = (int[])_sequenceLength.Clone();
        var rows = new List<int>();
        for (var t = 0; t < tokens.Length; t++)
        {
            int token = tokens[t], seq = sequenceIds[t], pos = positions[t];
            if (token < 0 || token >= _c.VocabSize)
                throw new MomeException(MomeErrorCode.OutOfRange,
                    $"token {token} (batch index {t}) is outside the vocabulary 0..{_c.VocabSize - 1}");
            if (seq < 0 || seq >= _sequenceLength.Length)
                throw new MomeException(MomeErrorCode.OutOfRange, $"sequence id {seq} (batch index {t}) is outside 0..{_sequenceLength.Length - 1}");
            if (pos != next[seq])
                throw new MomeException(MomeErrorCode.InvalidArgument,
                    $"position {pos} of sequence {seq} (batch index {t}) is out of order: the sequence continues at position {next[seq]}");
            if (pos >= ContextLength)
                throw new MomeException(MomeErrorCode.OutOfRange,
                    $"context overflow: sequence {seq} would need position {pos}, the session holds {ContextLength}");
            next[seq]++;
            if (wantLogits.IsEmpty ? t == tokens.Length - 1 : wantLogits[t]) rows.Add(t);
        }
        // Routes made by this batch are kept only if the whole batch succeeds.
        var routesBefore = _memory?.Snapshot();
        float[] logits;
        try
        {
            logits = Forward(tokens.ToArray(), positions.ToArray(), sequenceIds.ToArray(), rows.ToArray(), cancellationToken);
        }
        catch
        {
            if (routesBefore is not null) _memory!.Restore(routesBefore);
            throw;
        }
        Array.Copy(next, _sequenceLength, next.Length);
        return logits;
    }

    public float[] Evaluate(ReadOnlySpan<int> tokens, int sequence = 0, bool allLogits = false, CancellationToken cancellationToken = default)
    {
        var (positions, ids, want) = SequenceBatch.Continue(SequenceLength(sequence), tokens.Length, sequence, allLogits);
        return Decode(tokens, positions, ids, want, cancellationToken);
    }

    public int SequenceLength(int sequence)
    {
        CheckSequence(sequence);
        return _sequenceLength[sequence];
    }

    public void Truncate(int sequence, int length)
    {
        CheckSequence(sequence);
        if (length < 0 || length > _sequenceLength[sequence])
            throw new MomeException(MomeErrorCode.OutOfRange, $"cannot truncate sequence {sequence} of length {_sequenceLength[sequence]} to {length}");
        _sequenceLength[sequence] = length;
        if (length == 0) _memory?.Forget(sequence);
    }

    public void Clear()
    {
        Array.Clear(_sequenceLength);
        _memory?.ForgetAll();
    }

    public void Dispose()
    {
        foreach (var (k, v) in _cache)
        {
            k.Dispose();
            v.Dispose();
        }
        _cache.Clear();
    }

    private void CheckSequence(int sequence)
    {
        if (sequence < 0 || sequence >= _sequenceLength.Length)
            throw new MomeException(MomeErrorCode.OutOfRange, $"sequence id {sequence} is outside 0..{_sequenceLength.Length - 1}");
    }

    private float[] Forward(int[] tokens, int[] positions, int[] sequenceIds, int[] rows, CancellationToken cancellationToken)
    {
        var a = _model.Accelerator;
        var k = _kernels;
        var w = _model.Weights;
        var n = tokens.Length;
        var (cos, sin) = RopeTables(positions);
        using var dTokens = a.Allocate1D(tokens);
        using var dPositions = a.Allocate1D(positions);
        using var dSequences = a.Allocate1D(sequenceIds);
        using var dCos = a.Allocate1D(cos);
        using var dSin = a.Allocate1D(sin);
        using var x = a.Allocate1D<float>((long)n * Embd);
        using var xn = a.Allocate1D<float>((long)n * Embd);
        using var rounded = a.Allocate1D<float>((long)n * Math.Max(Math.Max(Embd, QDim), Ff));
        using var q = a.Allocate1D<float>((long)n * QDim);
        using var kk = a.Allocate1D<float>((long)n * KvDim);
        using var v = a.Allocate1D<float>((long)n * KvDim);
        using var attn = a.Allocate1D<float>((long)n * QDim);
        using var o = a.Allocate1D<float>((long)n * Embd);
        using var gate = a.Allocate1D<float>((long)n * Ff);
        using var up = a.Allocate1D<float>((long)n * Ff);
        using var act = a.Allocate1D<float>((long)n * Ff);
        int heads = (int)_c.HeadCount, kvHeads = (int)_c.KvHeadCount, headDim = (int)_c.HeadDim, pairs = (int)_c.RopeDimensions / 2;

        k.Embed(n * Embd, w.TokenEmbedding.Buffer.View, dTokens.View, x.View, Embd);
        for (var l = 0; l < w.Layers.Count; l++)
        {
            a.Synchronize();
            cancellationToken.ThrowIfCancellationRequested();
            var L = w.Layers[l];
            var (kCache, vCache) = _cache[l];
            k.RmsNorm(n, x.View, L.AttnNorm.View, xn.View, Embd, _c.RmsNormEps);
            Matmul(L.Wq, xn, rounded, q, n);
            Matmul(L.Wk, xn, rounded, kk, n);
            Matmul(L.Wv, xn, rounded, v, n);
            if (pairs > 0)
            {
                k.Rope(n * heads * pairs, q.View, dCos.View, dSin.View, heads, headDim, pairs);
                k.Rope(n * kvHeads * pairs, kk.View, dCos.View, dSin.View, kvHeads, headDim, pairs);
            }
            k.StoreKv(n * KvDim, kk.View, v.View, dSequences.View, dPositions.View, kCache.View, vCache.View, KvDim, ContextLength);
            k.Attention(n * heads, q.View, kCache.View, vCache.View, dSequences.View, dPositions.View, attn.View, heads, kvHeads, headDim,
                ContextLength);
            Matmul(L.Wo, attn, rounded, o, n);
            k.Add(n * Embd, x.View, o.View);
            k.RmsNorm(n, x.View, L.FfnNorm.View, xn.View, Embd, _c.RmsNormEps);
            Matmul(L.Gate, xn, rounded, gate, n);
            Matmul(L.Up, xn, rounded, up, n);
            k.SwiGlu(n * Ff, gate.View, up.View, act.View);
            Matmul(L.Down, act, rounded, o, n);
            k.Add(n * Embd, x.View, o.View);
            // The memory layer beside the MLP, on the same normalised input (xn).
            if (_memory?.SlotOf(l) is { } slot and >= 0) _memory.AddDelta(slot, xn, sequenceIds, x.View);
        }
        if (rows.Length == 0)
        {
            a.Synchronize();
            return [];
        }
        using var dRows = a.Allocate1D(rows);
        using var picked = a.Allocate1D<float>((long)rows.Length * Embd);
        using var normed = a.Allocate1D<float>((long)rows.Length * Embd);
        using var logits = a.Allocate1D<float>((long)rows.Length * VocabSize);
        k.GatherRows(rows.Length * Embd, x.View, dRows.View, picked.View, Embd);
        k.RmsNorm(rows.Length, picked.View, w.OutputNorm.View, normed.View, Embd, _c.RmsNormEps);
        using var roundedOut = a.Allocate1D<float>((long)rows.Length * Embd);
        Matmul(w.Output, normed, roundedOut, logits, rows.Length);
        return logits.GetAsArray1D();
    }

    /// <summary>y = W x, with x first rounded to W's file type (F16/BF16) as ggml rounds it.</summary>
    private void Matmul(DeviceMatrix W, MemoryBuffer1D<float, Stride1D.Dense> x, MemoryBuffer1D<float, Stride1D.Dense> scratch,
        MemoryBuffer1D<float, Stride1D.Dense> y, int n)
    {
        var input = x.View;
        var count = (long)n * W.Cols;
        if (W.FileType is TensorType.F16 or TensorType.BF16)
        {
            Action<int, ArrayView<float>, ArrayView<float>> round = W.FileType == TensorType.F16 ? _kernels.RoundToF16 : _kernels.RoundToBF16;
            round((int)count, x.View.SubView(0, count), scratch.View.SubView(0, count));
            input = scratch.View;
        }
        _kernels.Matmul(W.Buffer.View, input, y.View, W.Rows, W.Cols, n);
    }

    /// <summary>cos and sin of every (token, pair) angle, computed as the native core computes
    /// them (theta stepped by a float factor; llama3 frequency factors; linear scaling).</summary>
    private (float[] Cos, float[] Sin) RopeTables(int[] positions)
    {
        var pairs = (int)_c.RopeDimensions / 2;
        var factors = _model.Weights.RopeFactors;
        var thetaScale = MathF.Pow(_c.RopeFreqBase, -2.0f / _c.RopeDimensions);
        var cos = new float[Math.Max(1, positions.Length * pairs)];
        var sin = new float[cos.Length];
        for (var t = 0; t < positions.Length; t++)
        {
            float theta = positions[t];
            for (var i = 0; i < pairs; i++)
            {
                var factor = factors?[i] ?? 1.0f;
                var angle = _c.RopeFreqScale * (theta / factor);
                cos[t * pairs + i] = MathF.Cos(angle);
                sin[t * pairs + i] = MathF.Sin(angle);
                theta *= thetaScale;
            }
        }
        return (cos, sin);
    }
}
