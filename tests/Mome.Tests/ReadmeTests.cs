namespace Mome.Tests;

/// <summary>.ci/run runs the README's two commands word for word on a fresh clone, and
/// shared/tools/fresh-machine.sh runs every `dotnet ...` line inside the README's fenced blocks:
/// those lines must be exactly the two commands, and .ci/run must name both.</summary>
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
        var ci = File.ReadAllText(Path.Combine(TestPaths.RepoRoot, ".ci", "run"));
        foreach (var command in fenced) Assert.That(ci, Does.Contain($"\"{command}\""), $".ci/run runs `{command}`");
    }
}
