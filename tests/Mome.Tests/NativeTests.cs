using System.Diagnostics;
using System.Text;
using System.Text.Json;

namespace Mome.Tests;

/// <summary>
/// The native C++ suite (GoogleTest cases registered with CTest), one NUnit case per CTest case,
/// so that the TRX count includes every native case and a shrinking native suite shows there.
/// A build without GoogleTest registers one CTest case that fails and names it.
/// </summary>
public sealed class NativeTests
{
    /// <summary>CTest's exit code for a case that reported itself skipped (a case that cannot run on this machine).</summary>
    private const string SkippedMarker = "***Skipped";

    public static IEnumerable<TestCaseData> CTestCases()
    {
        var buildDir = TestPaths.NativeBuildDir;
        if (!File.Exists(Path.Combine(buildDir, "CTestTestfile.cmake")))
        {
            yield return new TestCaseData($"(no CTest build in {buildDir})").SetName("NativeSuiteIsBuilt");
            yield break;
        }
        var (exit, output) = RunCTest(["--show-only=json-v1"]);
        if (exit != 0)
        {
            yield return new TestCaseData($"(ctest --show-only failed: {output})").SetName("NativeSuiteIsListed");
            yield break;
        }
        using var listing = JsonDocument.Parse(output);
        foreach (var test in listing.RootElement.GetProperty("tests").EnumerateArray())
        {
            var name = test.GetProperty("name").GetString()!;
            yield return new TestCaseData(name).SetName($"Native({name})");
        }
    }

    [TestCaseSource(nameof(CTestCases))]
    public void CTestCasePasses(string name)
    {
        Assert.That(name, Does.Not.StartWith("("), name);
        var (exit, output) = RunCTest(["--output-on-failure", "--timeout", "600", "-R", $"^{EscapeRegex(name)}$"]);
        TestContext.Out.WriteLine(output);
        if (exit == 0 && output.Contains(SkippedMarker, StringComparison.Ordinal))
            Assert.Ignore($"{name} reported itself skipped (exit 77): {LastLines(output)}");
        Assert.That(exit, Is.EqualTo(0), $"{name} failed:\n{output}");
        Assert.That(output, Does.Contain("100% tests passed, 0 tests failed out of 1"), $"ctest did not run exactly {name}:\n{output}");
    }

    private static (int Exit, string Output) RunCTest(string[] arguments)
    {
        var start = new ProcessStartInfo("ctest", ["--test-dir", TestPaths.NativeBuildDir, .. arguments])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromMinutes(15)))
        {
            process.Kill(entireProcessTree: true);
            return (-1, "ctest timed out after 15 minutes");
        }
        return (process.ExitCode, stdout.Result + stderr.Result);
    }

    /// <summary>CMake regular expressions treat these characters specially; test names hold '.', '/' and '_'.</summary>
    private static string EscapeRegex(string name)
    {
        var escaped = new StringBuilder();
        foreach (var c in name)
        {
            if ("^$.[]*+?()|\\".Contains(c)) escaped.Append('\\');
            escaped.Append(c);
        }
        return escaped.ToString();
    }

    private static string LastLines(string output) =>
        string.Join('\n', output.Split('\n', StringSplitOptions.RemoveEmptyEntries).TakeLast(4));
}
