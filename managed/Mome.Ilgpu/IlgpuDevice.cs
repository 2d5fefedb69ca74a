using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;
using ILGPU.Runtime.Cuda;
using ILGPU.Runtime.OpenCL;
using Mome.Engines;

namespace Mome.Ilgpu;

/// <summary>
/// One ILGPU accelerator for the whole process, per kind: made on first use and kept (a
/// context and its compiled kernels are costly to make and cheap to keep).
/// </summary>
public static class IlgpuDevice
{
    private static readonly Dictionary<IlgpuAccelerator, Accelerator> Accelerators = [];
    private static Context? _context;

    /// <summary>The accelerator of <paramref name="kind"/>; throws MomeException (BackendError) when the host has none.</summary>
    public static Accelerator Get(IlgpuAccelerator kind)
    {
        if (!Enum.IsDefined(kind)) throw new ArgumentException($"unknown accelerator {(int)kind}", nameof(kind));
        lock (Accelerators)
        {
            if (Accelerators.TryGetValue(kind, out var a)) return a;
            _context ??= Context.Create(b => b.CPU(CpuDevice()).Cuda().OpenCL().EnableAlgorithms());
            a = kind switch
            {
                IlgpuAccelerator.Cpu => _context.CreateCPUAccelerator(0),
                IlgpuAccelerator.Cuda => _context.GetCudaDevices().Count > 0 ? _context.CreateCudaAccelerator(0)
                    : throw NoDevice("CUDA"),
                _ => _context.GetCLDevices().Count > 0 ? _context.CreateCLAccelerator(0) : throw NoDevice("OpenCL"),
            };
            Accelerators.Add(kind, a);
            return a;
        }
    }

    /// <summary>The CPU accelerator's shape: groups of 16 threads (4 warps of 4), one multiprocessor per core.</summary>
    private static CPUDevice CpuDevice() => new(4, 4, Math.Max(1, Environment.ProcessorCount));

    /// <summary>What an accelerator is, for people: its kind and device name.</summary>
    public static string Describe(IlgpuAccelerator kind) => $"ILGPU {kind} ({Get(kind).Name})";

    private static MomeException NoDevice(string what) =>
        new(MomeErrorCode.BackendError, $"the ILGPU engine found no {what} device on this host (use --accelerator cpu)");
}
