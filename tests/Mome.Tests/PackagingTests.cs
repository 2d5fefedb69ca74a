using System.Diagnostics;
using System.Text;

namespace Mome.Tests;

/// <summary>
/// The NuGet packages work from an app outside the repository: `dotnet pack` of Mome and
/// Mome.Runtime.linux-x64 into a temp feed, a new console app that references only `Mome`
/// from it, `dotnet run`; its output is compared with the same steps done in-process here.
/// </summary>
[NonParallelizable]
public sealed class PackagingTests
{
    private const string Prompt = "The capital of France is";
    private const int MaxTokens = 6;

    private static readonly TimeSpan StepTimeout = TimeSpan.FromMinutes(3);

    private string _dir = "";

    [SetUp]
    public void SetUp() => _dir = TestPaths.NewTempDir();

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, recursive: true);

    [Test]
    public void AppOutsideTheRepoRunsFromThePackedPackages()
    {
        // A version no earlier run used, and a private package folder: nothing can come from a stale cache.
        var version = $"0.1.0-test{DateTime.UtcNow:yyyyMMddHHmmss}";
        var feed = Path.Combine(_dir, "feed");
        foreach (var project in new[] { "packaging/Mome.Runtime.linux-x64/Mome.Runtime.linux-x64.csproj", "managed/Mome/Mome.csproj" })
            Dotnet(TestPaths.RepoRoot, "pack", Path.Combine(TestPaths.RepoRoot, project), "-c", TestPaths.Configuration,
                "--no-build", $"-p:Version={version}", $"-p:NuspecOutputPath={Path.Combine(_dir, "nuspec")}/", "-o", feed);
        Assert.That(File.Exists(Path.Combine(feed, $"Mome.{version}.nupkg")), "the Mome package");
        Assert.That(File.Exists(Path.Combine(feed, $"Mome.Runtime.linux-x64.{version}.nupkg")), "the runtime package");

        var app = Path.Combine(_dir, "app");
        Directory.CreateDirectory(app);
        WriteApp(app, feed, version);
        Dotnet(app, "build", "-c", "Release", "-m:1");
        var modelPath = Path.Combine(_dir, "tiny.gguf");
        var output = Dotnet(app, "run", "--no-build", "-c", "Release", "--", modelPath);

        var (parameters, tokens) = InProcess(Path.Combine(_dir, "expected.gguf"));
        var lines = output.Split('\n', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)
            .Where(l => l.Contains('=')).ToDictionary(l => l[..l.IndexOf('=')], l => l[(l.IndexOf('=') + 1)..]);
        Assert.That(lines, Does.ContainKey("parameters").And.ContainKey("generated").And.ContainKey("native"), output);
        Assert.That(ulong.Parse(lines["parameters"]), Is.EqualTo(parameters), output);
        Assert.That(int.Parse(lines["generated"]), Is.EqualTo(MaxTokens), output);
        Assert.That(lines["tokens"], Is.EqualTo(string.Join(",", tokens)), output);
        // The library came from the package (below the app's output), not from the repository's build.
        Assert.That(lines["native"], Does.StartWith(Path.Combine(app, "bin")).And.EndWith("libmome.so"), output);
    }

    private static (ulong Parameters, List<int> Tokens) InProcess(string path)
    {
        MomeModel.CreateSynthetic(SyntheticModelConfig.Preset("tiny"), path, seed: 1);
        using var model = MomeModel.Open(path);
        using var bank = MemoryBank.Create(model, new MemoryOptions { Experts = 256, KeyDim = 16, TopK = 8 });
        using var generator = new TextGenerator(model, new SessionOptions { Memory = bank });
        var tokens = generator.GenerateTokens(generator.Tokenizer.Encode(Prompt),
            new GenerationOptions { MaxTokens = MaxTokens, StopAtEndOfGeneration = false }).ToList();
        return (model.Config.ParameterCount, tokens);
    }

    private static void WriteApp(string app, string feed, string version)
    {
        // No <clear/>: the sources configured on this machine still apply, so Mome's own
        // dependencies restore as usual; the test feed is added to them.
        File.WriteAllText(Path.Combine(app, "nuget.config"), $"""
            <?xml version="1.0" encoding="utf-8"?>
            <configuration>
              <config>
                <add key="globalPackagesFolder" value="{Path.Combine(app, "packages")}" />
              </config>
              <packageSources>
                <add key="mome-test-feed" value="{feed}" />
              </packageSources>
            </configuration>
            """);
        File.WriteAllText(Path.Combine(app, "App.csproj"), $"""
            <Project Sdk="Microsoft.NET.Sdk">
              <PropertyGroup>
                <OutputType>Exe</OutputType>
                <TargetFramework>net10.0</TargetFramework>
                <ImplicitUsings>enable</ImplicitUsings>
                <Nullable>enable</Nullable>
              </PropertyGroup>
              <ItemGroup>
                <PackageReference Include="Mome" Version="{version}" />
              </ItemGroup>
            </Project>
            """);
        File.WriteAllText(Path.Combine(app, "Program.cs"), $$"""
            using Mome;

            MomeModel.CreateSynthetic(SyntheticModelConfig.Preset("tiny"), args[0], seed: 1);
            using var model = MomeModel.Open(args[0]);
            using var bank = MemoryBank.Create(model, new MemoryOptions { Experts = 256, KeyDim = 16, TopK = 8 });
            using var generator = new TextGenerator(model, new SessionOptions { Memory = bank });
            var tokens = generator.GenerateTokens(generator.Tokenizer.Encode("{{Prompt}}"),
                new GenerationOptions { MaxTokens = {{MaxTokens}}, StopAtEndOfGeneration = false }).ToList();
            Console.WriteLine($"parameters={model.Config.ParameterCount}");
            Console.WriteLine($"generated={tokens.Count}");
            Console.WriteLine($"tokens={string.Join(",", tokens)}");
            Console.WriteLine($"native={MomeNativeLibrary.LoadedPath}");
            """);
    }

    /// <summary>Runs dotnet and returns its standard output; fails the test with both streams
    /// when it exits non-zero or runs past <see cref="StepTimeout"/>.</summary>
    private static string Dotnet(string workingDirectory, params string[] args)
    {
        var start = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet")
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (var arg in args) start.ArgumentList.Add(arg);
        // The test host runs under MSBuild/VSTest; their variables would leak into the child build.
        foreach (var key in start.Environment.Keys.Where(k => k.StartsWith("MSBuild", StringComparison.OrdinalIgnoreCase)).ToList())
            start.Environment.Remove(key);
        start.Environment.Remove("MOME_NATIVE_LIBRARY");
        start.Environment["MOME_BACKEND"] = "cpu";
        // Lingering build nodes would keep the output pipes open after dotnet exits.
        start.Environment["MSBUILDDISABLENODEREUSE"] = "1";
        start.Environment["DOTNET_CLI_USE_MSBUILD_SERVER"] = "0";

        using var process = Process.Start(start)!;
        var stdout = new StringBuilder();
        var stderr = new StringBuilder();
        process.OutputDataReceived += (_, e) => { if (e.Data != null) lock (stdout) stdout.AppendLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data != null) lock (stderr) stderr.AppendLine(e.Data); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        if (!process.WaitForExit(StepTimeout))
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail($"dotnet {string.Join(' ', args)} ran past {StepTimeout}:\n{stdout}\n{stderr}");
        }
        process.WaitForExit();
        Assert.That(process.ExitCode, Is.EqualTo(0), $"dotnet {string.Join(' ', args)} failed:\n{stdout}\n{stderr}");
        return stdout.ToString();
    }
}
