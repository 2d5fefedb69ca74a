using System.CommandLine;
using Spectre.Console;

namespace Mome.Cli.Commands;

/// <summary>`mome devices`: the loaded native library, its build and the devices it sees.</summary>
public static class DevicesCommand
{
    public static Command Create(CliIo io)
    {
        var command = new Command("devices", "List the compute devices the native core sees.");
        command.SetAction(_ => io.Guard(() =>
        {
            var build = MomeRuntime.Build;
            io.Console.MarkupLineInterpolated($"libmome {MomeRuntime.Version} (ABI {MomeRuntime.AbiVersion}) from {MomeNativeLibrary.LoadedPath}");
            io.Console.MarkupLineInterpolated(
                $"CUDA backend: {(build.HasCuda ? $"built (runtime {build.CudaRuntimeVersion})" : "not built")}; CPU: AVX2 {build.CpuAvx2}, AVX-512 {build.CpuAvx512}");
            var table = new Table().AddColumn("#").AddColumn("backend").AddColumn("name").AddColumn("memory").AddColumn("units").AddColumn("cc");
            var i = 0;
            foreach (var d in MomeRuntime.Devices)
                table.AddRow((i++).ToString(), d.Backend.ToString(), Markup.Escape(d.Name), $"{d.TotalMemory / (1024.0 * 1024 * 1024):N1} GiB",
                    d.ComputeUnits.ToString(), d.Backend == DeviceBackend.Cuda ? $"{d.ComputeCapabilityMajor}.{d.ComputeCapabilityMinor}" : "-");
            io.Console.Write(table);
        }));
        return command;
    }
}
