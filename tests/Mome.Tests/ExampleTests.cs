using System.Diagnostics;

namespace Mome.Tests;

/// <summary>native/examples: the C program that adds a bank's memory layer to a host's own
/// hidden states through the C ABI is built with CMake and run on a bank whose experts all
/// change the hidden states (random B, where a new bank has B = 0).</summary>
[NonParallelizable]
public sealed class ExampleTests
{
    [Test]
    public void EmbeddingExampleAddsTheMemoryLayerAsAPlainLoopDoes()
    {
        var dir = TestPaths.NewTempDir();
        try
        {
            BuildAndRun(dir);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    private static void BuildAndRun(string dir)
    {
        var modelPath = Path.Combine(dir, "tiny.gguf");
        var bankPath = Path.Combine(dir, "random.mome");
        MomeModel.CreateSynthetic(SyntheticModelConfig.Preset("tiny"), modelPath, seed: 4);
        using (var model = MomeModel.Open(modelPath))
        using (var bank = MemoryBank.Create(model, new MemoryOptions { Experts = 256, KeyDim = 32, TopK = 8, Rank = 4, Router = RouterKind.Flat, Seed = 2 }))
        {
            var random = new Random(3);
            for (var e = 0; e < bank.Options.Experts; e++)
                bank.SetExpert(0, e, null, Enumerable.Range(0, bank.Options.Rank * (int)model.Config.EmbeddingLength).Select(_ => (float)random.NextDouble() - 0.5f).ToArray());
            bank.Save(bankPath);
        }
        var library = Path.Combine(TestPaths.NativeBuildDir, "lib", "libmome.so");
        Assert.That(File.Exists(library), $"the native build has no {library}");
        var build = Path.Combine(dir, "examples");
        Run("cmake", "-S", Path.Combine(TestPaths.RepoRoot, "native", "examples"), "-B", build, $"-DMOME_LIBRARY={library}");
        Run("cmake", "--build", build);
        var output = Run(Path.Combine(build, "embed_memory_layer"), modelPath, bankPath);
        TestContext.Out.WriteLine(output);
        Assert.That(output, Does.Contain("max |diff| vs loop"));
        // The experts change the hidden states: the check compared something non-zero.
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
