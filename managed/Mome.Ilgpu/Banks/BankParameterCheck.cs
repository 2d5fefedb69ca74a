namespace Mome.Ilgpu.Banks;

/// <summary>The native core's checks of a bank's parameters against its model
/// (memory/bank.cpp resolve_bank_params), in its order and words.</summary>
internal static class BankParameterCheck
{
    private const ulong MaxBankBytes = 1UL << 40;

    /// <summary>What is wrong with <paramref name="p"/> for a model of <paramref name="c"/>, or null.</summary>
    public static string? Problem(ModelConfig c, MemoryOptions p)
    {
        for (var i = 0; i < p.Layers.Count; i++)
        {
            if (p.Layers[i] < 0 || p.Layers[i] >= c.LayerCount)
                return $"layer {p.Layers[i]} is out of range: the model has layers 0..{c.LayerCount - 1}";
            for (var j = 0; j < i; j++)
                if (p.Layers[j] == p.Layers[i]) return $"layer {p.Layers[i]} is listed twice";
        }
        if (p.Experts is < 1 or > int.MaxValue) return $"n_experts = {p.Experts} is outside 1..{int.MaxValue} (expert indices are int32)";
        if (p.KeyDim is < 1 or > 65536) return $"key_dim = {p.KeyDim} is outside 1..65536";
        if (p.Rank is < 1 or > 4096) return $"rank = {p.Rank} is outside 1..4096";
        if (p.TopK is < 1 or > 4096) return $"top_k = {p.TopK} is outside 1..4096";
        if (p.TopK > p.Experts) return $"top_k = {p.TopK} is more than the {p.Experts} experts";
        if (!(p.Temperature > 0) || !float.IsFinite(p.Temperature)) return "temperature must be finite and > 0";
        if (!float.IsFinite(p.Alpha)) return "alpha must be finite";
        var keyCount = (ulong)p.Experts * (ulong)p.KeyDim;
        if (p.Router == RouterKind.Product)
        {
            var nSub = (long)Math.Round(Math.Sqrt(p.Experts));
            if (nSub * nSub != p.Experts) return $"the product router needs a square number of experts, not {p.Experts}";
            if (p.KeyDim % 2 != 0) return "the product router needs an even key_dim";
            if (p.TopK > nSub) return $"top_k = {p.TopK} is more than the {nSub} sub-keys per half";
            keyCount = 2 * (ulong)nSub * (ulong)(p.KeyDim / 2);
        }
        var elem = p.WeightType == TensorType.F32 ? 4UL : 2UL;
        var bytes = (ulong)p.Layers.Count * (2 * (ulong)p.Experts * (ulong)p.Rank * (ulong)c.EmbeddingLength * elem + keyCount * elem +
                                             (ulong)p.KeyDim * (ulong)c.EmbeddingLength * 4);
        return bytes > MaxBankBytes ? $"the tables would need {CFormat.F(bytes / 1073741824.0, 1)} GiB" : null;
    }
}
