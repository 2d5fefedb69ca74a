using System.Diagnostics;

namespace Mome.Tests;

/// <summary>native/examples: the C program that adds a bank's memory layer to a host's own
/// hidden states through the C ABI is built with CMake and run on a tuned bank.</summary>
[NonParallelizable]
public sealed class ExampleTests
{
    [Test]
    public async Task EmbeddingExampleAddsTheMemoryLayerAsAPlainLoopDoes()
    {
        using var memorised = await MemorisedBank.CreateAsync();
        var library = Path.Combine(TestPaths.NativeBuildDir, "lib", "libmome.so");
        Assert.That(File.Exists(library), $"the native build has no {library}");
        var build = Path.Combine(memorised.Dir, "examples");
        Run("cmake", "-S", Path.Combine(TestPaths.RepoRoot, "native", "examples"), "-B", build, $"-DMOME_LIBRARY={library}");
        Run("cmake", "--build", build);
        var output = Run(Path.Combine(build, "embed_memory_layer"), memorised.ModelPath, memorised.BankPath);
        TestContext.Out.WriteLine(output);
        Assert.That(output, Does.Contain("max |diff| vs loop"));
        // A tuned bank changes the hidden states: the check compared something non-zero.
        var delta = double.Parse(output.Split("max |delta| ")[1].Split(',')[0], System.Globalization.CultureInfo.InvariantCulture);
        Assert.That(delta, Is.GreaterThan(1e-3));
    }

    private static string Run(string program, params string[] args)
    {
        var start = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args) start.ArgumentList.Add(a);
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEnd();
        process.WaitForExit();
        Assert.That(process.ExitCode, Is.EqualTo(0), $"{program} {string.Join(' ', args)} failed:\n{stdout.Result}\n{stderr}");
        return stdout.Result;
    }
}
