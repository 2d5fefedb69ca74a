using Mome.Gguf;

namespace Mome.Tests;

/// <summary>
/// The tokenizer built from the managed GGUF reader's metadata (what the ILGPU engine uses where
/// the native core is absent) against the one built from the native reader's (itself checked
/// against llama.cpp in TokenizerTests): the same ids for every corpus text, the same errors.
/// </summary>
[NonParallelizable]
public sealed class ManagedTokenizerTests
{
    private string _dir = "";

    [OneTimeSetUp]
    public void SetUp() => _dir = TestPaths.NewTempDir();

    [OneTimeTearDown]
    public void TearDown() => Directory.Delete(_dir, recursive: true);

    private static MomeTokenizer Managed(string path)
    {
        using var file = GgufFile.Open(path);
        return MomeTokenizer.FromFile(file);
    }

    [TestCase("tiny")]
    [TestCase("llama2")]
    [TestCase("llama3")]
    public void EncodesAndDecodesAsTheNativeReadersTokenizer(string vocabulary)
    {
        var path = Path.Combine(_dir, vocabulary + ".gguf");
        if (vocabulary == "tiny") MomeModel.CreateSynthetic(SyntheticModelConfig.Preset("tiny"), path);
        else
            using (var json = TokenizerTestData.TokenizerJson(vocabulary == "llama2" ? TokenizerTestData.Llama2Package : TokenizerTestData.Llama3Package))
            {
                if (vocabulary == "llama2") TokenizerTestData.WriteLlama2Gguf(json, path);
                else TokenizerTestData.WriteLlama3Gguf(json, path);
            }
        MomeTokenizer native;
        using (var model = MomeModel.Open(path, metadataOnly: true)) native = MomeTokenizer.FromModel(model);
        var managed = Managed(path);
        Assert.That(managed.VocabSize, Is.EqualTo(native.VocabSize));
        foreach (var text in TokenizerCorpus.Texts)
        {
            var ids = native.Encode(text, addSpecial: true, parseSpecial: true);
            Assert.That(managed.Encode(text, addSpecial: true, parseSpecial: true), Is.EqualTo(ids), text);
            Assert.That(managed.Decode(ids), Is.EqualTo(native.Decode(ids)), text);
        }
    }

    [TestCaseSource(typeof(TokenizerTests), nameof(TokenizerTests.MalformedVocabularies))]
    public void RefusesWhatTheNativeReadersTokenizerRefuses(byte[] gguf, MomeErrorCode code, string[] message)
    {
        var path = Path.Combine(_dir, "bad.gguf");
        File.WriteAllBytes(path, gguf);
        var native = Assert.Throws<MomeException>(() =>
        {
            using var model = MomeModel.Open(path, metadataOnly: true);
            MomeTokenizer.FromModel(model);
        })!;
        var managed = Assert.Throws<MomeException>(() => Managed(path))!;
        Assert.That(native.Code, Is.EqualTo(code));
        Assert.That((managed.Code, managed.Message), Is.EqualTo((native.Code, native.Message)));
    }
}
