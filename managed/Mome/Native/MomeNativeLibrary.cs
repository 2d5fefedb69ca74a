using System.Reflection;
using System.Runtime.InteropServices;
using Mome.Interop;

namespace Mome;

/// <summary>
/// Finds and loads the native core. Policy, in order: an explicit path
/// (<see cref="ExplicitPath"/> or the environment variable MOME_NATIVE_LIBRARY), then the
/// CUDA-enabled build (libmome_cuda), then the CPU build (libmome), each looked for next to
/// the application and in runtimes/&lt;rid&gt;/native below it (the NuGet packages'
/// Mome.Runtime.linux-x64[.Cuda] layout). Set MOME_BACKEND=cpu to skip the CUDA
/// build. The ABI version is checked once, on first use.
/// </summary>
public static class MomeNativeLibrary
{
    private static readonly object Gate = new();
    private static IntPtr _handle;
    private static bool _checked;
    private static bool _resolverRegistered;

    /// <summary>Path of a libmome build to load instead of searching; set before first use.</summary>
    public static string? ExplicitPath { get; set; }

    /// <summary>The file the native core was loaded from (null before first use).</summary>
    public static string? LoadedPath { get; private set; }

    /// <summary>Loads the library and checks its ABI version; every public entry point calls it.</summary>
    internal static void EnsureLoaded()
    {
        if (Volatile.Read(ref _checked)) return;
        lock (Gate)
        {
            if (_checked) return;
            if (!_resolverRegistered)
            {
                NativeLibrary.SetDllImportResolver(typeof(MomeNativeLibrary).Assembly, Resolve);
                _resolverRegistered = true;
            }
            Load();
            var abi = NativeMethods.mome_abi_version();
            if (abi != MomeConstants.MOME_ABI_VERSION)
                throw new InvalidOperationException(
                    $"{LoadedPath} has ABI version {abi}, but this Mome.dll was built for {MomeConstants.MOME_ABI_VERSION}. " +
                    "Rebuild the native library (dotnet build Mome.sln) or point MOME_NATIVE_LIBRARY at a matching build.");
            _checked = true;
        }
    }

    /// <summary>Loads the library as <see cref="EnsureLoaded"/> does, but says why it could not
    /// instead of throwing: hosts use it to fall back to the managed ILGPU engine.</summary>
    public static bool TryEnsureLoaded(out string? reason)
    {
        try
        {
            EnsureLoaded();
            reason = null;
            return true;
        }
        catch (Exception e) when (e is DllNotFoundException or InvalidOperationException or EntryPointNotFoundException or BadImageFormatException)
        {
            reason = e.Message;
            return false;
        }
    }

    private static IntPtr Resolve(string name, Assembly assembly, DllImportSearchPath? searchPath) =>
        name == NativeMethods.LibraryName ? Load() : IntPtr.Zero;

    private static IntPtr Load()
    {
        lock (Gate)
        {
            if (_handle != IntPtr.Zero) return _handle;
            var tried = new List<string>();
            var explicitPath = ExplicitPath ?? Environment.GetEnvironmentVariable("MOME_NATIVE_LIBRARY");
            if (!string.IsNullOrEmpty(explicitPath))
            {
                // An explicit choice never silently falls back to another build.
                if (!TryLoad(explicitPath, tried))
                    throw new DllNotFoundException(
                        $"Mome's native library could not be loaded from the explicit path {explicitPath}: {tried[0]}");
                return _handle;
            }
            foreach (var candidate in Candidates())
                if (TryLoad(candidate, tried)) return _handle;
            throw new DllNotFoundException(
                "Mome's native library (libmome.so) was not found or did not load. Tried:\n  " +
                string.Join("\n  ", tried) +
                "\nFrom NuGet: reference the Mome.Runtime.linux-x64 package (the Mome package brings it). " +
                "From the repository: build it with `dotnet build Mome.sln` (needs cmake and a C++17 compiler), " +
                "or set MOME_NATIVE_LIBRARY to the full path of a libmome build.");
        }
    }

    private static IEnumerable<string> Candidates()
    {
        var names = new List<string>();
        if (!string.Equals(Environment.GetEnvironmentVariable("MOME_BACKEND"), "cpu", StringComparison.OrdinalIgnoreCase))
            names.Add("mome_cuda");
        names.Add("mome");
        // The app folder is where `dotnet publish -r <rid>` puts the NuGet runtime package's
        // library; runtimes/<rid>/native below it is where `dotnet build` and a portable publish
        // put it. The package uses the portable RID (linux-x64), which a distro-built runtime's
        // own RuntimeIdentifier (e.g. debian.12-x64) does not match, so both are tried.
        var folders = new[]
        {
            AppContext.BaseDirectory,
            Path.GetDirectoryName(typeof(MomeNativeLibrary).Assembly.Location) ?? AppContext.BaseDirectory,
            Path.Combine(AppContext.BaseDirectory, "runtimes", RuntimeInformation.RuntimeIdentifier, "native"),
            Path.Combine(AppContext.BaseDirectory, "runtimes", PortableRuntimeIdentifier(), "native"),
        }.Select(Path.TrimEndingDirectorySeparator).Distinct();
        foreach (var name in names)
            foreach (var folder in folders)
                yield return Path.Combine(folder, FileName(name));
    }

    private static string PortableRuntimeIdentifier()
    {
        var os = OperatingSystem.IsWindows() ? "win" : OperatingSystem.IsMacOS() ? "osx" : "linux";
        return os + "-" + RuntimeInformation.ProcessArchitecture.ToString().ToLowerInvariant();
    }

    private static string FileName(string name) =>
        OperatingSystem.IsWindows() ? name + ".dll" : OperatingSystem.IsMacOS() ? "lib" + name + ".dylib" : "lib" + name + ".so";

    private static bool TryLoad(string path, List<string> tried)
    {
        if (!File.Exists(path))
        {
            tried.Add($"{path}: no such file");
            return false;
        }
        try
        {
            _handle = NativeLibrary.Load(path);
            LoadedPath = path;
            return true;
        }
        catch (Exception e) when (e is DllNotFoundException or BadImageFormatException)
        {
            tried.Add($"{path}: {e.Message}");
            return false;
        }
    }
}
