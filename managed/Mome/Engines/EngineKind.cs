namespace Mome.Engines;

/// <summary>Which engine computes: the native core (C++/CUDA) or the managed ILGPU fallback.</summary>
public enum EngineKind { Native = 0, Ilgpu = 1 }

/// <summary>Where the ILGPU engine runs its kernels.</summary>
public enum IlgpuAccelerator { Cpu = 0, Cuda = 1, OpenCL = 2 }
