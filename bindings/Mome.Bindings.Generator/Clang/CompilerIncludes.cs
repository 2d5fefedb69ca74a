using System.Diagnostics;

namespace Mome.Bindings.Generator.Clang;

/// <summary>
/// Finds a directory with a compiler's own stddef.h and stdint.h. The NuGet libclang ships
/// without clang's resource headers, so it cannot resolve them by itself; parsing with
/// -ffreestanding makes either GCC's or a system clang's copy self-contained (no libc headers).
/// </summary>
internal static class CompilerIncludes
{
    public static string Find()
    {
        string? directory = GccIncludeDirectory() ?? LlvmIncludeDirectories().FirstOrDefault();
        return directory ?? throw new BindingException(
            "No C compiler include directory with stddef.h was found: neither `gcc -print-file-name=include` "
            + "nor /usr/lib/llvm-*/lib/clang/*/include. Install gcc (or clang).");
    }

    private static string? GccIncludeDirectory()
    {
        try
        {
            using var gcc = Process.Start(new ProcessStartInfo("gcc", "-print-file-name=include")
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            });
            if (gcc is null)
            {
                return null;
            }
            string output = gcc.StandardOutput.ReadToEnd().Trim();
            gcc.WaitForExit();
            // gcc echoes the bare name back when it has no such directory.
            return gcc.ExitCode == 0 && HasStddef(output) ? output : null;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return null; // no gcc on PATH
        }
    }

    private static IEnumerable<string> LlvmIncludeDirectories()
    {
        if (!Directory.Exists("/usr/lib"))
        {
            return [];
        }
        return Directory.GetDirectories("/usr/lib", "llvm-*")
            .Select(llvm => Path.Combine(llvm, "lib", "clang"))
            .Where(Directory.Exists)
            .SelectMany(Directory.GetDirectories)
            .Select(version => Path.Combine(version, "include"))
            .Where(HasStddef)
            // Any version's stddef.h and stdint.h will do; sorting only makes the pick repeatable.
            .OrderByDescending(path => path, StringComparer.Ordinal);
    }

    private static bool HasStddef(string directory) =>
        Path.IsPathRooted(directory) && File.Exists(Path.Combine(directory, "stddef.h"));
}
