namespace Mome.Tests;

/// <summary>CI runs every `dotnet ...` line inside the README's fenced blocks on a fresh clone
/// (shared/tools/fresh-machine.sh, .ci/fresh-clone.sh): those lines must be exactly the two
/// commands the README promises, or CI would run an instruction meant for another folder.</summary>
public sealed class ReadmeTests
{
    [Test]
    public void TheFencedDotnetLinesAreExactlyTheTwoCommands()
    {
        var lines = File.ReadAllLines(Path.Combine(TestPaths.RepoRoot, "README.md"));
        var fenced = new List<string>();
        var inside = false;
        foreach (var line in lines)
        {
            if (line.StartsWith("```", StringComparison.Ordinal))
            {
                inside = !inside;
                continue;
            }
            if (inside && line.TrimStart().StartsWith("dotnet ", StringComparison.Ordinal)) fenced.Add(line.Trim());
        }
        Assert.That(fenced, Is.EqualTo(new[] { "dotnet run --project managed/Mome.Cli -c Release -- demo", "dotnet test Mome.sln -c Release" }));
    }
}
