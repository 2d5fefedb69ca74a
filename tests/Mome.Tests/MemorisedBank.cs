namespace Mome.Tests;

/// <summary>A tiny synthetic model and a bank tuned until it recalls a few made-up facts the
/// model cannot guess, saved to a temporary folder (the chat client and server tests ask it).</summary>
internal sealed class MemorisedBank : IDisposable
{
    public static readonly Fact[] Facts =
    [
        new("Who keeps the lantern of Orvik?", "Tessaly Brune"),
        new("What colour is the Vashmoor gate?", "pale copper"),
        new("Which river feeds lake Quennet?", "the Darrowfen"),
        new("How many bells hang in Isk tower?", "nineteen"),
    ];

    private MemorisedBank(string dir, MomeModel model, MemoryBank bank)
    {
        Dir = dir;
        Model = model;
        Bank = bank;
    }

    public string Dir { get; }
    public MomeModel Model { get; }
    public MemoryBank Bank { get; }
    public string ModelPath => Model.Path;
    public string BankPath => Path.Combine(Dir, "facts.mome");

    public static async Task<MemorisedBank> CreateAsync()
    {
        var dir = TestPaths.NewTempDir();
        var path = Path.Combine(dir, "tiny.gguf");
        MomeModel.CreateSynthetic(SyntheticModelConfig.Preset("tiny") with { InitStd = 0.25f }, path, seed: 9);
        var model = MomeModel.Open(path);
        var bank = MemoryBank.Create(model, new MemoryOptions { Experts = 4096, KeyDim = 64, TopK = 32, Rank = 4, Seed = 5, Alpha = 4 });
        var result = await new MemoryTuner(bank, new TuningOptions { Epochs = 60 }).TuneAsync(Facts);
        Assert.That(result.Recall, Is.EqualTo(1.0), "the fixture's bank must memorise its facts");
        bank.Save(Path.Combine(dir, "facts.mome"));
        return new MemorisedBank(dir, model, bank);
    }

    public void Dispose()
    {
        Bank.Dispose();
        Model.Dispose();
        Directory.Delete(Dir, recursive: true);
    }
}
