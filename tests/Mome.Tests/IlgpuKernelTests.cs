using ILGPU;
using ILGPU.Runtime;
using Mome.Engines;
using Mome.Ilgpu;
using Mome.Ilgpu.Kernels;

namespace Mome.Tests;

/// <summary>ILGPU kernels that the CPU accelerator's forward pass does not pick (the tiled
/// matmul is the GPUs' path), run on the CPU accelerator against plain loops.</summary>
public sealed class IlgpuKernelTests
{
    [TestCase(1, 1, 1)]
    [TestCase(5, 3, 7)]
    [TestCase(64, 48, 1)]
    [TestCase(33, 70, 9)]
    public void TiledMatmulMatchesPlainLoops(int rows, int cols, int n)
    {
        var rng = new Random(rows * 1000 + cols * 10 + n);
        var w = Enumerable.Range(0, rows * cols).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        var x = Enumerable.Range(0, n * cols).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        var expected = new double[n * rows];
        for (var t = 0; t < n; t++)
            for (var r = 0; r < rows; r++)
                for (var k = 0; k < cols; k++)
                    expected[t * rows + r] += (double)w[r * cols + k] * x[t * cols + k];

        var accelerator = IlgpuDevice.Get(IlgpuAccelerator.Cpu);
        var kernels = LlamaKernelSet.For(accelerator);
        using var dw = accelerator.Allocate1D(w);
        using var dx = accelerator.Allocate1D(x);
        using var tiled = accelerator.Allocate1D<float>(n * rows);
        using var plain = accelerator.Allocate1D<float>(n * rows);
        kernels.MatmulTiled(dw.View, dx.View, tiled.View, rows, cols, n);
        kernels.Matmul(dw.View, dx.View, plain.View, rows, cols, n);
        var fromTiled = tiled.GetAsArray1D();
        var fromPlain = plain.GetAsArray1D();
        for (var i = 0; i < expected.Length; i++)
        {
            Assert.That(fromTiled[i], Is.EqualTo(expected[i]).Within(1e-4), $"tiled, element {i}");
            Assert.That(fromPlain[i], Is.EqualTo(expected[i]).Within(1e-4), $"plain, element {i}");
        }
    }
}
