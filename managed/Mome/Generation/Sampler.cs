using System.Numerics.Tensors;

namespace Mome;

/// <summary>How the next token is chosen. Temperature 0 is greedy (argmax).</summary>
public record SamplingOptions
{
    /// <summary>0: greedy; otherwise logits are divided by it before the softmax.</summary>
    public float Temperature { get; init; }

    /// <summary>Keep only the K most likely tokens (0: all).</summary>
    public int TopK { get; init; }

    /// <summary>Keep the smallest set of most likely tokens whose probability reaches P (1: all).</summary>
    public float TopP { get; init; } = 1.0f;

    /// <summary>Seed of the random draws: the same seed gives the same text.</summary>
    public int Seed { get; init; } = 42;
}

/// <summary>Picks tokens from logits (greedy, or temperature / top-k / top-p sampling with a
/// seeded generator). The vector work runs through TensorPrimitives.</summary>
public sealed class Sampler
{
    private readonly SamplingOptions _options;
    private readonly Random _random;
    private float[] _scaled = [];
    private int[] _order = [];
    private ulong[] _keys = [];

    public Sampler(SamplingOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (!(options.Temperature >= 0) || float.IsInfinity(options.Temperature))
            throw new ArgumentOutOfRangeException(nameof(options), $"temperature {options.Temperature} must be finite and >= 0");
        if (options.TopK < 0) throw new ArgumentOutOfRangeException(nameof(options), $"top-k {options.TopK} must be >= 0");
        if (!(options.TopP > 0 && options.TopP <= 1)) throw new ArgumentOutOfRangeException(nameof(options), $"top-p {options.TopP} must be in (0, 1]");
        _options = options;
        _random = new Random(options.Seed);
    }

    public int Sample(ReadOnlySpan<float> logits)
    {
        if (logits.IsEmpty) throw new ArgumentException("no logits to sample from", nameof(logits));
        if (_options.Temperature == 0) return TensorPrimitives.IndexOfMax(logits);

        var n = logits.Length;
        if (_scaled.Length != n)
        {
            _scaled = new float[n];
            _order = new int[n];
        }
        TensorPrimitives.Divide(logits, _options.Temperature, _scaled);

        // Candidates: the top-k (or all) token ids, most likely first, ties by lower id.
        var k = _options.TopK == 0 ? n : Math.Min(_options.TopK, n);
        if (_keys.Length != n) _keys = new ulong[n];
        for (var i = 0; i < n; i++)
        {
            var bits = BitConverter.SingleToUInt32Bits(_scaled[i]);
            var ascending = (bits & 0x80000000u) != 0 ? ~bits : bits | 0x80000000u; // float order as unsigned order
            _keys[i] = ((ulong)~ascending << 32) | (uint)i;
        }
        Array.Sort(_keys);
        for (var i = 0; i < k; i++) _order[i] = (int)(uint)_keys[i];

        var candidates = _order.AsSpan(0, k);
        var probs = new float[k];
        for (var i = 0; i < k; i++) probs[i] = _scaled[candidates[i]];
        TensorPrimitives.SoftMax(probs, probs);

        // Top-p: the shortest prefix whose probability reaches p.
        var keep = k;
        if (_options.TopP < 1)
        {
            var cumulative = 0.0;
            for (var i = 0; i < k; i++)
            {
                cumulative += probs[i];
                if (cumulative >= _options.TopP)
                {
                    keep = i + 1;
                    break;
                }
            }
        }
        var total = TensorPrimitives.Sum(probs.AsSpan(0, keep));
        var draw = _random.NextDouble() * total;
        for (var i = 0; i < keep; i++)
        {
            draw -= probs[i];
            if (draw < 0) return candidates[i];
        }
        return candidates[keep - 1];
    }
}
