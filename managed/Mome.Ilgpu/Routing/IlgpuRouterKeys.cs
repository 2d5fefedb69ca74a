using ILGPU;
using ILGPU.Runtime;
using Mome.Engines;

namespace Mome.Ilgpu.Routing;

/// <summary>
/// A router's keys widened to F32 once and kept on an accelerator, so that routing a batch
/// uploads only its queries (a memory layer routes every batch against the same keys; a 2^20 x
/// 128 table is 512 MiB). Flat: [experts x key_dim]; product: the two sub-key tables, one after
/// the other. The spec is checked as the native router checks it before anything is uploaded.
/// </summary>
public sealed class IlgpuRouterKeys : IDisposable
{
    private readonly MemoryBuffer1D<float, Stride1D.Dense> _table;

    public IlgpuRouterKeys(RouterSpec spec, IlgpuAccelerator accelerator = IlgpuAccelerator.Cpu)
        : this(spec, IlgpuDevice.Get(accelerator))
    {
    }

    internal IlgpuRouterKeys(RouterSpec spec, Accelerator accelerator)
    {
        ArgumentNullException.ThrowIfNull(spec);
        IlgpuRouter.CheckSpec(spec);
        Accelerator = accelerator;
        _table = accelerator.Allocate1D(IlgpuRouter.KeysAsF32(spec));
        Spec = spec with { Keys = [] };
    }

    /// <summary>The router's spec, its keys left on the accelerator (<see cref="RouterSpec.Keys"/> is empty).</summary>
    public RouterSpec Spec { get; }

    internal Accelerator Accelerator { get; }

    internal ArrayView<float> Table => _table.View;

    public void Dispose() => _table.Dispose();
}
