namespace Mome.Tests;

/// <summary>The standalone matmul against a brute-force C# loop in double precision.</summary>
public sealed class OpsTests
{
    [TestCase(TensorType.F32, 1, 1, 1)]
    [TestCase(TensorType.F32, 37, 70, 5)]
    [TestCase(TensorType.F16, 64, 96, 1)]
    [TestCase(TensorType.F16, 33, 40, 9)]
    [TestCase(TensorType.BF16, 20, 48, 3)]
    public void MatMulEqualsBruteForce(TensorType type, int rows, int cols, int tokens)
    {
        var random = new Random(rows * 31 + cols);
        var w = Enumerable.Range(0, rows * cols).Select(_ => (float)(random.NextDouble() * 2 - 1)).ToArray();
        var x = Enumerable.Range(0, tokens * cols).Select(_ => (float)(random.NextDouble() * 2 - 1)).ToArray();
        // Weights are stored exactly (values already representable in the type). F16: the
        // engine rounds activations to F16 (llama.cpp's convention), and so does this loop,
        // with .NET's Half. BF16: this loop keeps activations unrounded; the engine's BF16
        // rounding (relative error <= 2^-8) is covered by the looser bound.
        Func<float, float> round = type switch
        {
            TensorType.F16 => v => (float)(Half)v,
            TensorType.BF16 => v => BitConverter.UInt32BitsToSingle(BitConverter.SingleToUInt32Bits(v) & 0xFFFF0000u),
            _ => v => v,
        };
        var stored = w.Select(round).ToArray();
        byte[] bytes = type switch
        {
            TensorType.F32 => stored.SelectMany(BitConverter.GetBytes).ToArray(),
            TensorType.F16 => stored.SelectMany(v => BitConverter.GetBytes((Half)v)).ToArray(),
            _ => stored.SelectMany(v => BitConverter.GetBytes((ushort)(BitConverter.SingleToUInt32Bits(v) >> 16))).ToArray(),
        };
        foreach (var reference in new[] { false, true })
        foreach (var threads in new[] { 1, 2 })
        {
            var y = new float[tokens * rows];
            MomeOps.MatMul(bytes, type, rows, cols, x, tokens, y, threads, reference);
            for (var t = 0; t < tokens; t++)
                for (var r = 0; r < rows; r++)
                {
                    double sum = 0, magnitude = 0;
                    for (var k = 0; k < cols; k++)
                    {
                        var xv = type == TensorType.BF16 ? x[t * cols + k] : round(x[t * cols + k]);
                        sum += (double)stored[r * cols + k] * xv;
                        magnitude += Math.Abs((double)stored[r * cols + k] * xv);
                    }
                    var tolerance = type == TensorType.BF16 ? magnitude / 128 : 1e-5 * (1 + magnitude);
                    Assert.That(y[t * rows + r], Is.EqualTo(sum).Within(tolerance), $"token {t} row {r} reference={reference} threads={threads}");
                }
        }
    }

    [Test]
    public void MatMulRejectsBadShapesAndBuffers()
    {
        var y = new float[4];
        Assert.Throws<ArgumentException>(() => MomeOps.MatMul(new float[3], 2, 2, new float[2], 1, y));
        Assert.Throws<ArgumentException>(() => MomeOps.MatMul(new float[4], 2, 2, new float[1], 1, y));
        var e = Assert.Throws<MomeException>(() => MomeOps.MatMul(new byte[16], TensorType.Q4_0, 2, 2, new float[2], 1, y))!;
        Assert.That(e.Code, Is.EqualTo(MomeErrorCode.Unsupported));
        e = Assert.Throws<MomeException>(() => MomeOps.MatMul(new float[4], 2, 2, new float[2], 0, y))!;
        Assert.That(e.Code, Is.EqualTo(MomeErrorCode.InvalidArgument));
    }
}
