using Mome.Interop;
using Mome.Native;

namespace Mome;

/// <summary>Where work runs; mirrors <c>mome_backend</c>.</summary>
public enum DeviceBackend { Cpu = 0, Cuda = 1, CpuReference = 2 }

/// <summary>A compute device: the CPU is always first; CUDA devices follow.</summary>
public sealed record DeviceInfo(DeviceBackend Backend, int Index, string Name, ulong TotalMemory, int ComputeUnits,
    int ComputeCapabilityMajor, int ComputeCapabilityMinor);

/// <summary>What the loaded native library was built with.</summary>
public sealed record BuildInfo(bool HasCuda, int CudaRuntimeVersion, bool CpuAvx2, bool CpuAvx512);

/// <summary>The loaded native core: version, build and devices.</summary>
public static unsafe class MomeRuntime
{
    public static string Version
    {
        get
        {
            MomeNativeLibrary.EnsureLoaded();
            return Status.Utf8(NativeMethods.mome_version());
        }
    }

    public static uint AbiVersion
    {
        get
        {
            MomeNativeLibrary.EnsureLoaded();
            return NativeMethods.mome_abi_version();
        }
    }

    public static BuildInfo Build
    {
        get
        {
            MomeNativeLibrary.EnsureLoaded();
            MomeBuildInfo b;
            Status.Check(NativeMethods.mome_get_build_info(&b));
            return new BuildInfo(b.HasCuda != 0, b.CudaRuntimeVersion, b.CpuAvx2 != 0, b.CpuAvx512 != 0);
        }
    }

    public static IReadOnlyList<DeviceInfo> Devices
    {
        get
        {
            MomeNativeLibrary.EnsureLoaded();
            int count;
            Status.Check(NativeMethods.mome_device_count(&count));
            var result = new List<DeviceInfo>(count);
            for (var i = 0; i < count; i++)
            {
                MomeDeviceInfo d;
                Status.Check(NativeMethods.mome_device_get_info(i, &d));
                result.Add(new DeviceInfo((DeviceBackend)(int)d.Backend, d.Index, Status.Utf8(d.Name), d.TotalMemory,
                    d.ComputeUnits, d.ComputeCapabilityMajor, d.ComputeCapabilityMinor));
            }
            return result;
        }
    }
}
