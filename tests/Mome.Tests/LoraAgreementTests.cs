using Mome.Ilgpu.Memory;

namespace Mome.Tests;

/// <summary>The ILGPU grouped LoRA (CPU accelerator) against the native op, in both routing forms:
/// one segment per sequence (with an empty one) and one per token; the same errors.</summary>
public sealed class LoraAgreementTests
{
    private const int Experts = 50, Dim = 24, TopK = 4;

    private static byte[] Table(TensorType type, int count, Random rng)
    {
        var values = Enumerable.Range(0, count).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        return type switch
        {
            TensorType.F32 => values.SelectMany(BitConverter.GetBytes).ToArray(),
            TensorType.F16 => values.SelectMany(v => BitConverter.GetBytes((Half)v)).ToArray(),
            _ => values.SelectMany(v => BitConverter.GetBytes((ushort)(BitConverter.SingleToUInt32Bits(v) >> 16))).ToArray(),
        };
    }

    private static (LoraTables Tables, float[] U, int[] Indices, float[] Weights, float[] Start) Inputs(TensorType type, int rank, int tokens, int segments)
    {
        var rng = new Random(rank * 100 + tokens);
        var tables = new LoraTables(type, Experts, Dim, rank, Table(type, Experts * rank * Dim, rng), Table(type, Experts * rank * Dim, rng));
        float Next() => (float)(rng.NextDouble() * 2 - 1);
        return (tables, Enumerable.Range(0, tokens * Dim).Select(_ => Next()).ToArray(),
            Enumerable.Range(0, segments * TopK).Select(_ => rng.Next(Experts)).ToArray(),
            Enumerable.Range(0, segments * TopK).Select(_ => (float)rng.NextDouble()).ToArray(),
            Enumerable.Range(0, tokens * Dim).Select(_ => Next()).ToArray());
    }

    [TestCase(TensorType.F32, 1, false)]
    [TestCase(TensorType.F32, 3, true)]
    [TestCase(TensorType.F16, 2, false)]
    [TestCase(TensorType.BF16, 1, true)]
    public void MatchesTheNativeOp(TensorType type, int rank, bool perToken)
    {
        const int tokens = 9;
        long[] offsets = perToken ? Enumerable.Range(0, tokens + 1).Select(i => (long)i).ToArray() : [0, 4, 4, 9];
        var (tables, u, indices, weights, start) = Inputs(type, rank, tokens, offsets.Length - 1);
        var native = (float[])start.Clone();
        var ilgpu = (float[])start.Clone();
        MomeOps.LoraApply(tables, u, tokens, offsets, indices, weights, TopK, 0.75f, native, threads: 1);
        IlgpuLora.Apply(tables, u, tokens, offsets, indices, weights, TopK, 0.75f, ilgpu);
        Assert.That(ForwardOracleTests.MaxAbsDiff(native, start), Is.GreaterThan(0.1), "the op changes the output");
        Assert.That(ForwardOracleTests.MaxAbsDiff(ilgpu, native), Is.LessThanOrEqualTo(1e-4));
    }

    [TestCase(new long[] { 0, 5, 9 }, 99, 0f, "grouped LoRA: segment offsets must run from 0 to n_tokens = 8")]
    [TestCase(new long[] { 0, 6, 3, 8 }, 0, 0f, "grouped LoRA: segment 1 ends before it starts")]
    [TestCase(new long[] { 0, 8 }, 50, 0f, "grouped LoRA: expert index 50 (segment 0) is outside 0..49")]
    [TestCase(new long[] { 0, 8 }, 0, float.NaN, "grouped LoRA: weight 2 of segment 0 is not finite")]
    public void BadInputGivesTheNativeError(long[] offsets, int badIndex, float badWeight, string message)
    {
        const int tokens = 8;
        var (tables, u, indices, weights, start) = Inputs(TensorType.F32, 1, offsets[^1] == 9 ? 9 : tokens, offsets.Length - 1);
        if (badIndex != 0) indices[1] = badIndex;
        if (float.IsNaN(badWeight)) weights[2] = badWeight;
        var native = Assert.Throws<MomeException>(() => MomeOps.LoraApply(tables, u, tokens, offsets, indices, weights, TopK, 1f, start, threads: 1))!;
        var ilgpu = Assert.Throws<MomeException>(() => IlgpuLora.Apply(tables, u, tokens, offsets, indices, weights, TopK, 1f, start))!;
        Assert.That(native.Message, Is.EqualTo(message));
        Assert.That((ilgpu.Code, ilgpu.Message), Is.EqualTo((native.Code, native.Message)));
    }
}
