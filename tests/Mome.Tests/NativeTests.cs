using System.Diagnostics;

namespace Mome.Tests;

/// <summary>Runs the native C++ tests (GoogleTest, registered with CTest) as part of the suite.</summary>
public sealed class NativeTests
{
    [Test]
    public void CTestSuitePasses()
    {
        var buildDir = TestPaths.NativeBuildDir;
        Assert.That(File.Exists(Path.Combine(buildDir, "CTestTestfile.cmake")), Is.True, $"no CTest build in {buildDir}");
        var start = new ProcessStartInfo("ctest", ["--test-dir", buildDir, "--output-on-failure", "--timeout", "300"])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        Assert.That(process.WaitForExit(TimeSpan.FromMinutes(10)), Is.True, "ctest timed out");
        TestContext.Out.WriteLine(stdout.Result);
        Assert.That(process.ExitCode, Is.EqualTo(0), stdout.Result + stderr.Result);
        Assert.That(stdout.Result, Does.Contain("100% tests passed"));
    }
}
