namespace Mome.Tests;

/// <summary>Facts files: valid JSONL loads; every bad line is reported with its number and
/// nothing is returned; synthetic facts are seeded and distinct.</summary>
public sealed class FactsTests
{
    private string _dir = "";

    [SetUp]
    public void SetUp() => _dir = TestPaths.NewTempDir();

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, recursive: true);

    private string Write(string text)
    {
        var path = Path.Combine(_dir, "facts.jsonl");
        File.WriteAllText(path, text);
        return path;
    }

    [Test]
    public void ValidFileLoadsAndRepeatsAreKeptOnce()
    {
        var facts = FactsFile.Load(Write("{\"question\":\"Q1?\",\"answer\":\"a\"}\n\n{\"question\":\"Q2? é\",\"answer\":\"b\"}\n{\"question\":\"Q1?\",\"answer\":\"a\"}\n"));
        Assert.That(facts, Is.EqualTo(new[] { new Fact("Q1?", "a"), new Fact("Q2? é", "b") }));
    }

    [Test]
    public void EveryBadLineIsReportedWithItsNumber()
    {
        var e = Assert.Throws<FactsFormatException>(() => FactsFile.Load(Write(string.Join("\n",
            "{\"question\":\"ok\",\"answer\":\"fine\"}",
            "{not json",
            "[1,2]",
            "{\"question\":\"no answer\"}",
            "{\"question\":\" \",\"answer\":\"x\"}",
            "{\"question\":\"ok\",\"answer\":\"different\"}",
            "{\"question\":5,\"answer\":\"x\"}"))))!;
        Assert.That(e.Problems, Has.Count.EqualTo(6));
        Assert.That(e.Problems[0], Does.StartWith("line 2: not JSON"));
        Assert.That(e.Problems[1], Does.StartWith("line 3: not a JSON object"));
        Assert.That(e.Problems[2], Does.StartWith("line 4: \"answer\" is missing"));
        Assert.That(e.Problems[3], Does.StartWith("line 5: \"question\" is empty"));
        Assert.That(e.Problems[4], Does.Contain("line 6").And.Contain("line 1").And.Contain("conflict"));
        Assert.That(e.Problems[5], Does.StartWith("line 7: \"question\" is missing or not a string"));
    }

    [Test]
    public void EmptyFileAndInvalidUtf8AreRefused()
    {
        Assert.Throws<FactsFormatException>(() => FactsFile.Load(Write("\n\n")));
        var path = Path.Combine(_dir, "bad.jsonl");
        File.WriteAllBytes(path, [0x7B, 0xFF, 0xFE, 0x7D, 0x0A]);
        var e = Assert.Throws<FactsFormatException>(() => FactsFile.Load(path))!;
        Assert.That(e.Message, Does.Contain("UTF-8"));
        Assert.Throws<IOException>(() => FactsFile.Load(_dir));
    }

    [Test]
    public void ALoneSurrogateEscapeIsAProblemOfItsLine()
    {
        // Found by ManagedParserFuzzTests: JsonElement.GetString threw InvalidOperationException.
        var e = Assert.Throws<FactsFormatException>(() => FactsFile.Load(Write(string.Join("\n",
            "{\"question\":\"fine \\ud83d\\ude00\",\"answer\":\"a\"}",
            "{\"question\":\"half \\ud800\",\"answer\":\"b\"}",
            "{\"question\":\"q\",\"answer\":\"low \\udc00 first\"}",
            "{\"ques\\ud800tion\":\"q3\",\"answer\":\"c\"}"))))!;
        const string problem = ": a string escape that is no text (a lone surrogate such as \\ud800)";
        Assert.That(e.Problems, Is.EqualTo(new[] { "line 2" + problem, "line 3" + problem, "line 4" + problem }));
    }

    [Test]
    public void APromptLineOfOnlyEscapedNewlinesIsBlank()
    {
        // Found by ManagedParserFuzzTests (MOME_FUZZ_ITERATIONS=20000): "\n" alone was kept as a prompt.
        var path = Path.Combine(_dir, "prompts.txt");
        File.WriteAllText(path, "first\\nline\n\\n\n  \\n\\n \nlast\n");
        Assert.That(PromptsFile.Load(path), Is.EqualTo(new[] { "first\nline", "last" }));
    }

    [TestCase("random")]
    [TestCase("sql")]
    public void SyntheticFactsAreSeededDistinctAndRoundTrip(string kind)
    {
        IReadOnlyList<Fact> Make(int seed) => kind == "sql" ? SyntheticFacts.Sql(500, seed) : SyntheticFacts.Random(500, seed);
        var facts = Make(1);
        Assert.That(facts, Has.Count.EqualTo(500));
        Assert.That(facts.Select(f => f.Question).Distinct().Count(), Is.EqualTo(500));
        Assert.That(Make(1), Is.EqualTo(facts));
        Assert.That(Make(2), Is.Not.EqualTo(facts));
        if (kind == "random") Assert.That(facts.All(f => f.Answer.Length == 32));
        var path = Path.Combine(_dir, "synth.jsonl");
        FactsFile.Save(path, facts);
        Assert.That(FactsFile.Load(path), Is.EqualTo(facts));
    }
}
