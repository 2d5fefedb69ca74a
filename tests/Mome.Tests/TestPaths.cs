using System.Reflection;

namespace Mome.Tests;

/// <summary>Where the repository and the native build are, and scratch folders for tests.</summary>
internal static class TestPaths
{
    public static string RepoRoot => Metadata("MomeRepoRoot");

    public static string NativeBuildDir => Metadata("MomeNativeBuildDir");

    /// <summary>The build configuration the tests were built in (Release, Debug).</summary>
    public static string Configuration => Path.GetFileName(NativeBuildDir.TrimEnd('/'));

    public static string Header => Path.Combine(RepoRoot, "native", "include", "mome.h");

    public static string GeneratedBindings => Path.Combine(RepoRoot, "bindings", "generated");

    /// <summary>A fresh empty folder, removed when the test run's process ends is not
    /// guaranteed, so tests delete what they create.</summary>
    public static string NewTempDir()
    {
        var dir = Path.Combine(Path.GetTempPath(), "mome-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        return dir;
    }

    private static string Metadata(string key) =>
        typeof(TestPaths).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().Single(a => a.Key == key).Value!;
}
