using System.Runtime.InteropServices;
using Mome.Interop;
using Mome.Native;

namespace Mome;

/// <summary>Standalone operators of the native core over caller buffers.</summary>
public static unsafe partial class MomeOps
{
    /// <summary>
    /// y[tokens x rows] = x[tokens x cols] * W^T for a row-major weight W [rows x cols] stored
    /// as F32, F16 or BF16 (GGUF's layout). Activations are rounded to the weight's type as
    /// llama.cpp does.
    /// </summary>
    public static void MatMul(ReadOnlySpan<byte> weight, TensorType weightType, int rows, int cols, ReadOnlySpan<float> x,
        int tokens, Span<float> y, int threads = 0, bool useReference = false)
    {
        var elementSize = weightType == TensorType.F32 ? 4 : 2;
        if (weight.Length < (long)rows * cols * elementSize)
            throw new ArgumentException($"weight holds {weight.Length} bytes; {rows}x{cols} {weightType} needs {(long)rows * cols * elementSize}", nameof(weight));
        if (x.Length < (long)tokens * cols) throw new ArgumentException($"x holds {x.Length} floats; {tokens}x{cols} needed", nameof(x));
        if (y.Length < (long)tokens * rows) throw new ArgumentException($"y holds {y.Length} floats; {tokens}x{rows} needed", nameof(y));
        MomeNativeLibrary.EnsureLoaded();
        fixed (byte* w = weight)
        fixed (float* px = x)
        fixed (float* py = y)
            Status.Check(NativeMethods.mome_matmul(w, (MomeTensorType)(int)weightType, rows, cols, px, tokens, py, threads,
                useReference ? MomeBackend.CpuReference : MomeBackend.Cpu));
    }

    /// <summary>As <see cref="MatMul(ReadOnlySpan{byte}, TensorType, int, int, ReadOnlySpan{float}, int, Span{float}, int, bool)"/>
    /// for an F32 weight.</summary>
    public static void MatMul(ReadOnlySpan<float> weight, int rows, int cols, ReadOnlySpan<float> x, int tokens, Span<float> y,
        int threads = 0, bool useReference = false) =>
        MatMul(MemoryMarshal.AsBytes(weight), TensorType.F32, rows, cols, x, tokens, y, threads, useReference);
}
