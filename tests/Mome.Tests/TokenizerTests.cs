using System.Diagnostics;
using System.Text;

namespace Mome.Tests;

/// <summary>
/// <see cref="MomeTokenizer"/> against llama.cpp (LLamaSharp, vocab-only loads of the same
/// GGUF files) on Mome's synthetic SentencePiece vocabularies and the real Llama 2 and Llama 3
/// vocabularies (see <see cref="TokenizerTestData"/>).
/// </summary>
[NonParallelizable]
public sealed partial class TokenizerTests
{
    public enum Vocab
    {
        SyntheticTiny,
        SyntheticMini,
        /// <summary>The tiny vocabulary with add_space_prefix and add_bos off, add_eos on.</summary>
        SyntheticTinyFlags,
        Llama2,
        Llama3,
    }

    private sealed record Pair(MomeTokenizer Mome, TokenizerOracle Llama, TimeSpan BuildTime) : IDisposable
    {
        public void Dispose() => Llama.Dispose();
    }

    private readonly Dictionary<Vocab, Lazy<Pair>> _pairs = [];
    private string _dir = "";

    [OneTimeSetUp]
    public void CreateVocabularies()
    {
        _dir = TestPaths.NewTempDir();
        foreach (var v in Enum.GetValues<Vocab>())
            _pairs[v] = new Lazy<Pair>(() => Load(v), LazyThreadSafetyMode.ExecutionAndPublication);
    }

    [OneTimeTearDown]
    public void DeleteVocabularies()
    {
        foreach (var pair in _pairs.Values.Where(p => p.IsValueCreated)) pair.Value.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    [Test]
    public void EncodeMatchesLlamaCpp([Values] Vocab vocab, [Values] bool addSpecial, [Values] bool parseSpecial)
    {
        var (mome, llama, _) = Get(vocab);
        var mismatches = new List<string>();
        foreach (var text in TokenizerCorpus.Texts)
        {
            var expected = llama.Tokenize(text, addSpecial, parseSpecial);
            var actual = mome.Encode(text, addSpecial, parseSpecial);
            if (!expected.SequenceEqual(actual))
                mismatches.Add($"{Show(text)}\n  llama.cpp: [{string.Join(", ", expected)}]\n  Mome:      [{string.Join(", ", actual)}]");
        }
        Assert.That(mismatches, Is.Empty, $"{mismatches.Count} of {TokenizerCorpus.Texts.Length} texts differ:\n" + string.Join("\n", mismatches));
    }

    /// <summary>Random strings over characters where the rules differ (spaces, line breaks,
    /// apostrophes, digits, letters of several scripts, marks, emoji, special-token texts).</summary>
    [Test]
    public void EncodeMatchesLlamaCppOnRandomText([Values] Vocab vocab)
    {
        var (mome, llama, _) = Get(vocab);
        string[] atoms =
        [
            " ", " ", "  ", "\t", "\n", "\r\n", "\r", "\u00A0", "\u3000", "'", "'s", "'LL", "'t", "a", "e", "s", "T", "the", "The", "ing",
            "Hello", "world", "x", "0", "7", "42", "123", "9999", ".", ",", "!", "?", "-", "_", "(", ")", "{", "}", "<", ">", "|", "/",
            "\\", "\"", "#", "é", "e\u0301", "ß", "Ж", "λ", "日本", "語", "한", "ع", "ש", "\u0915\u093F", "😀", "👍🏽", "𝐀", "𠀀", "½", "٣",
            "<s>", "</s>", "<unk>", "<|eot_id|>", "<|begin_of_text|>", "<|end_of_text|>", "▁", "<0x0A>", "\u0000",
        ];
        var random = new Random(20261126);
        var mismatches = new List<string>();
        for (var i = 0; i < 400 && mismatches.Count < 10; i++)
        {
            var text = string.Concat(Enumerable.Range(0, random.Next(1, 24)).Select(_ => atoms[random.Next(atoms.Length)]));
            var addSpecial = random.Next(2) == 0;
            var parseSpecial = random.Next(2) == 0;
            var expected = llama.Tokenize(text, addSpecial, parseSpecial);
            var actual = mome.Encode(text, addSpecial, parseSpecial);
            if (!expected.SequenceEqual(actual))
                mismatches.Add($"{Show(text)} (addSpecial {addSpecial}, parseSpecial {parseSpecial})\n  llama.cpp: [{string.Join(", ", expected)}]\n  Mome:      [{string.Join(", ", actual)}]");
        }
        Assert.That(mismatches, Is.Empty, string.Join("\n", mismatches));
    }

    [Test]
    public void SpecialTokensAndFlagsMatchLlamaCpp([Values] Vocab vocab)
    {
        var (mome, llama, _) = Get(vocab);
        var v = llama.Vocab;
        Assert.Multiple(() =>
        {
            Assert.That(mome.VocabSize, Is.EqualTo(v.Count), "vocabulary size");
            Assert.That(mome.BosToken, Is.EqualTo((int?)v.BOS), "BOS");
            Assert.That(mome.EosToken, Is.EqualTo((int?)v.EOS), "EOS");
            Assert.That(mome.AddBos, Is.EqualTo(v.ShouldAddBOS), "add BOS");
            Assert.That(mome.AddEos, Is.EqualTo(v.ShouldAddEOS), "add EOS");
            var expected = Enumerable.Range(0, v.Count).Where(t => ((LLama.Native.LLamaToken)t).IsEndOfGeneration(v)).ToArray();
            var actual = Enumerable.Range(0, mome.VocabSize).Where(mome.IsEndOfGeneration).ToArray();
            Assert.That(actual, Is.EqualTo(expected), "end-of-generation tokens");
            Assert.That(mome.IsEndOfGeneration(-1) || mome.IsEndOfGeneration(mome.VocabSize), Is.False, "ids outside the vocabulary");
        });
    }

    [Test]
    public void TokenBytesMatchLlamaCppPiecesForEveryToken([Values] Vocab vocab)
    {
        var (mome, llama, _) = Get(vocab);
        var mismatches = new List<string>();
        for (var t = 0; t < mome.VocabSize && mismatches.Count < 20; t++)
        {
            var expected = llama.Piece(t, special: true);
            var actual = mome.TokenBytes(t);
            if (!expected.AsSpan().SequenceEqual(actual))
                mismatches.Add($"token {t}: llama.cpp {Convert.ToHexString(expected)}, Mome {Convert.ToHexString(actual)}");
            var expectedPlain = llama.Piece(t, special: false);
            var actualPlain = mome.RenderedPiece(t, skipSpecial: true).ToArray();
            if (!expectedPlain.AsSpan().SequenceEqual(actualPlain))
                mismatches.Add($"token {t} without specials: llama.cpp {Convert.ToHexString(expectedPlain)}, Mome {Convert.ToHexString(actualPlain)}");
        }
        Assert.That(mismatches, Is.Empty, string.Join("\n", mismatches));
    }

    [Test]
    public void DecodeMatchesLlamaCppDetokenize([Values] Vocab vocab, [Values] bool skipSpecial)
    {
        var (mome, llama, _) = Get(vocab);
        var byteLevel = vocab == Vocab.Llama3;
        var mismatches = new List<string>();
        foreach (var text in TokenizerCorpus.Texts)
        {
            var tokens = llama.Tokenize(text, addSpecial: true, parseSpecial: true);
            var expected = llama.Detokenize(tokens, removeSpecial: skipSpecial, unparseSpecial: !skipSpecial);
            var actual = mome.Decode(tokens, skipSpecial);
            // llama.cpp also "cleans up tokenization spaces" for BPE vocabularies; Mome does not
            // (MomeTokenizer.Decode), so the comparison applies llama.cpp's clean-up to Mome's text.
            var comparable = byteLevel ? LlamaCppCleanUpSpaces(actual) : actual;
            if (expected != comparable)
                mismatches.Add($"{Show(text)}\n  llama.cpp: {Show(expected)}\n  Mome:      {Show(comparable)}");
        }
        Assert.That(mismatches, Is.Empty, string.Join("\n", mismatches));
    }

    /// <summary>Decode(Encode(text)) is the text wherever llama.cpp's detokenize(tokenize(text)) is;
    /// without special tokens that is every text of the corpus. (With them, SentencePiece adds a
    /// space after each special token that neither gives back.)</summary>
    [Test]
    public void DecodeInvertsEncodeWhereLlamaCppDoes([Values] Vocab vocab)
    {
        var (mome, llama, _) = Get(vocab);
        var mismatches = new List<string>();
        var notInvertible = 0;
        foreach (var text in TokenizerCorpus.Texts)
        {
            var expected = Encoding.UTF8.GetString(Encoding.UTF8.GetBytes(text)); // lone surrogates become U+FFFD
            foreach (var parseSpecial in new[] { false, true })
            {
                var llamaText = llama.Detokenize(llama.Tokenize(text, addSpecial: false, parseSpecial), removeSpecial: !parseSpecial,
                    unparseSpecial: parseSpecial);
                var decoded = mome.Decode(mome.Encode(text, addSpecial: false, parseSpecial), skipSpecial: !parseSpecial);
                var llamaInverts = llamaText == expected || (vocab == Vocab.Llama3 && llamaText == LlamaCppCleanUpSpaces(expected));
                if (!llamaInverts)
                {
                    Assert.That(parseSpecial, Is.True, $"llama.cpp does not give back {Show(text)} but {Show(llamaText)}");
                    notInvertible++;
                    continue;
                }
                if (decoded != expected) mismatches.Add($"{Show(text)} (parseSpecial {parseSpecial}) -> {Show(decoded)}");
            }
        }
        TestContext.Out.WriteLine($"{notInvertible} texts with special tokens are not given back by llama.cpp either");
        Assert.That(mismatches, Is.Empty, string.Join("\n", mismatches));
    }

    [Test]
    public void StreamingDecoderYieldsTheTextOfDecode([Values] Vocab vocab, [Values] bool skipSpecial)
    {
        var (mome, _, _) = Get(vocab);
        var decoder = new TokenTextDecoder(mome, skipSpecial);
        foreach (var text in TokenizerCorpus.Texts)
        {
            var tokens = mome.Encode(text, addSpecial: true, parseSpecial: true);
            var streamed = new StringBuilder();
            foreach (var t in tokens) streamed.Append(decoder.Append(t));
            streamed.Append(decoder.Flush());
            Assert.That(streamed.ToString(), Is.EqualTo(mome.Decode(tokens, skipSpecial)), Show(text));
        }
    }

    [Test]
    public void StreamingDecoderHoldsBackAnUnfinishedCharacter()
    {
        var (mome, _, _) = Get(Vocab.SyntheticTiny);
        var tokens = mome.Encode("a😀", addSpecial: false); // the emoji has no piece: four byte tokens
        Assert.That(tokens, Has.Length.EqualTo(5));
        var decoder = new TokenTextDecoder(mome);
        Assert.That(tokens.Select(decoder.Append).ToArray(), Is.EqualTo(new[] { "a", "", "", "", "😀" }));
        Assert.That(decoder.Append(tokens[1]), Is.Empty);
        Assert.That(decoder.Flush(), Is.EqualTo("\uFFFD"), "an unfinished sequence at the end");
        Assert.That(mome.Decode(tokens.AsSpan(0, 3)), Is.EqualTo("a\uFFFD"));
    }

    /// <summary>The full Llama 3 vocabulary encodes a 4 KB text as llama.cpp does, the same
    /// every time. Its times are printed, never asserted: a shared machine makes wall-clock
    /// limits fail by chance.</summary>
    [Test]
    public void Llama3TokenizerEncodesALongTextAsLlamaCppDoes()
    {
        var (mome, llama, buildTime) = Get(Vocab.Llama3);
        var text = TokenizerCorpus.Long;
        var expected = llama.Tokenize(text, true, false);
        var first = mome.Encode(text);
        Assert.That(first, Is.EqualTo(expected), "the long text's tokens");
        for (var i = 0; i < 50; i++) mome.Encode(text); // warm up (tiered JIT)
        var watch = Stopwatch.StartNew();
        const int runs = 20;
        for (var i = 0; i < runs; i++) Assert.That(mome.Encode(text), Is.EqualTo(first), $"encoding {i + 1}");
        var perEncode = watch.Elapsed / runs;
        TestContext.Out.WriteLine($"Llama 3 tokenizer (128256 tokens, 280147 merges): open + build {buildTime.TotalMilliseconds:F0} ms; " +
                                  $"encoding {text.Length} chars into {first.Length} tokens {perEncode.TotalMilliseconds:F2} ms");
    }

    /// <summary>Without byte tokens a character that no piece covers becomes the unknown token
    /// (llama.cpp throws there, so this has no oracle).</summary>
    [Test]
    public void CharactersWithoutPieceOrByteTokenBecomeUnknown()
    {
        var path = Path.Combine(_dir, "no-bytes.gguf");
        File.WriteAllBytes(path, TokenizerTestData.VocabOnlyLlama()
            .Str("tokenizer.ggml.model", "llama")
            .StrArray("tokenizer.ggml.tokens", ["<unk>", "<s>", "</s>", "▁", "a", "▁a"])
            .F32Array("tokenizer.ggml.scores", [0, 0, 0, -1, -2, -3])
            .I32Array("tokenizer.ggml.token_type", [2, 3, 3, 1, 1, 1])
            .Build());
        using var model = MomeModel.Open(path, metadataOnly: true);
        var mome = MomeTokenizer.FromModel(model);
        Assert.That(mome.Encode("a bä"), Is.EqualTo(new[] { 1, 5, 3, 0, 0, 0 }), "'b' is one byte, 'ä' two");
        Assert.That(mome.Decode([1, 5, 3, 0, 0, 0]), Is.EqualTo(" a "), "skipping special tokens drops <unk> too");
        Assert.That(mome.Decode([1, 5, 3, 0, 0, 0], skipSpecial: false), Is.EqualTo("<s> a <unk><unk><unk>"));
    }

    [Test]
    public void OutOfRangeIdsAreRejectedWithTheIdAndVocabularySize()
    {
        var (mome, _, _) = Get(Vocab.SyntheticTiny);
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => mome.Decode([5, mome.VocabSize]))!;
        Assert.That(e.Message, Does.Contain(mome.VocabSize.ToString()).And.Contain("512"));
        e = Assert.Throws<ArgumentOutOfRangeException>(() => mome.TokenBytes(-3))!;
        Assert.That(e.Message, Does.Contain("-3").And.Contain("512"));
        Assert.Throws<ArgumentOutOfRangeException>(() => new TokenTextDecoder(mome).Append(100000));
    }

    public static IEnumerable<TestCaseData> MalformedVocabularies()
    {
        string[] three = ["<unk>", "a", "b"];
        TestCaseData Case(string name, Func<GgufBuilder, GgufBuilder> keys, MomeErrorCode code, params string[] message) =>
            new TestCaseData(keys(TokenizerTestData.VocabOnlyLlama()).Build(), code, message).SetName(name);

        yield return Case("no tokenizer", b => b.U32("llama.vocab_size", 32), MomeErrorCode.FormatError, "'tokenizer.ggml.model' is missing");
        yield return Case("no_vocab", b => b.Str("tokenizer.ggml.model", "no_vocab").U32("llama.vocab_size", 32),
            MomeErrorCode.Unsupported, "'no_vocab' is not supported");
        yield return Case("bert", b => b.Str("tokenizer.ggml.model", "bert").StrArray("tokenizer.ggml.tokens", three),
            MomeErrorCode.Unsupported, "'bert' is not supported");
        yield return Case("gpt2 with the qwen2 pre-tokenizer", b => b.Str("tokenizer.ggml.model", "gpt2").Str("tokenizer.ggml.pre", "qwen2")
            .StrArray("tokenizer.ggml.tokens", three).StrArray("tokenizer.ggml.merges", ["a b"]), MomeErrorCode.Unsupported, "'qwen2'");
        yield return Case("gpt2 without a pre-tokenizer", b => b.Str("tokenizer.ggml.model", "gpt2").StrArray("tokenizer.ggml.tokens", three)
            .StrArray("tokenizer.ggml.merges", ["a b"]), MomeErrorCode.Unsupported, "pre-tokenizer '<absent>'");
        yield return Case("no tokens", b => b.Str("tokenizer.ggml.model", "llama").U32("llama.vocab_size", 32), MomeErrorCode.FormatError,
            "'tokenizer.ggml.tokens' is missing");
        yield return Case("fewer scores than tokens", b => b.Str("tokenizer.ggml.model", "llama").StrArray("tokenizer.ggml.tokens", three)
            .F32Array("tokenizer.ggml.scores", [0, 0]), MomeErrorCode.FormatError, "'tokenizer.ggml.scores' has 2 entries", "has 3");
        yield return Case("more token types than tokens", b => b.Str("tokenizer.ggml.model", "llama").StrArray("tokenizer.ggml.tokens", three)
            .I32Array("tokenizer.ggml.token_type", [2, 1, 1, 1]), MomeErrorCode.FormatError, "'tokenizer.ggml.token_type' has 4 entries");
        yield return Case("token types as floats", b => b.Str("tokenizer.ggml.model", "llama").StrArray("tokenizer.ggml.tokens", three)
            .F32Array("tokenizer.ggml.token_type", [2, 1, 1]), MomeErrorCode.FormatError, "'tokenizer.ggml.token_type' is not an array of int32");
        yield return Case("tokens as numbers", b => b.Str("tokenizer.ggml.model", "llama").I32Array("tokenizer.ggml.tokens", [1, 2]),
            MomeErrorCode.FormatError, "'tokenizer.ggml.tokens' is not an array of strings");
        yield return Case("a duplicate token", b => b.Str("tokenizer.ggml.model", "llama").StrArray("tokenizer.ggml.tokens", ["<unk>", "a", "a"]),
            MomeErrorCode.FormatError, "duplicate token", "ids 1 and 2");
        yield return Case("gpt2 without merges", b => b.Str("tokenizer.ggml.model", "gpt2").Str("tokenizer.ggml.pre", "llama-bpe")
            .StrArray("tokenizer.ggml.tokens", three), MomeErrorCode.FormatError, "'tokenizer.ggml.merges' is missing");
        yield return Case("BOS to add but none", b => b.Str("tokenizer.ggml.model", "gpt2").Str("tokenizer.ggml.pre", "llama-bpe")
            .StrArray("tokenizer.ggml.tokens", three).StrArray("tokenizer.ggml.merges", ["a b"]), MomeErrorCode.FormatError,
            "add_bos_token is true, but tokenizer.ggml.bos_token_id is not set");
        yield return Case("add_bos_token not a bool", b => b.Str("tokenizer.ggml.model", "llama").StrArray("tokenizer.ggml.tokens", three)
            .U32("tokenizer.ggml.add_bos_token", 1), MomeErrorCode.FormatError, "'tokenizer.ggml.add_bos_token' is not a bool");
    }

    [TestCaseSource(nameof(MalformedVocabularies))]
    public void MalformedOrUnsupportedVocabulariesAreRejectedByName(byte[] gguf, MomeErrorCode code, string[] message)
    {
        var path = Path.Combine(_dir, "malformed.gguf");
        File.WriteAllBytes(path, gguf);
        // Opening may already refuse what Mome's reader checks for every Llama file (the token list).
        var e = Assert.Throws<MomeException>(() =>
        {
            using var model = MomeModel.Open(path, metadataOnly: true);
            MomeTokenizer.FromModel(model);
        })!;
        Assert.That(e.Code, Is.EqualTo(code), e.Message);
        Assert.That(e.Message, Does.StartWith(path));
        foreach (var part in message) Assert.That(e.Message, Does.Contain(part));
    }

    [Test]
    public void FromModelRejectsNull() => Assert.Throws<ArgumentNullException>(() => MomeTokenizer.FromModel(null!));

    private Pair Get(Vocab vocab)
    {
        try
        {
            return _pairs[vocab].Value;
        }
        catch (Exception e)
        {
            Assert.Fail($"the {vocab} vocabulary is unavailable: {e.Message}");
            throw;
        }
    }

    private Pair Load(Vocab vocab)
    {
        var path = Path.Combine(_dir, vocab + ".gguf");
        switch (vocab)
        {
            case Vocab.SyntheticTiny:
                MomeModel.CreateSynthetic(SyntheticModelConfig.Preset("tiny"), path);
                break;
            case Vocab.SyntheticMini:
                MomeModel.CreateSynthetic(SyntheticModelConfig.Preset("mini"), path);
                break;
            case Vocab.SyntheticTinyFlags:
                WriteTinyWithFlags(path);
                break;
            case Vocab.Llama2:
                using (var json = TokenizerTestData.TokenizerJson(TokenizerTestData.Llama2Package))
                    TokenizerTestData.WriteLlama2Gguf(json, path);
                break;
            case Vocab.Llama3:
                using (var json = TokenizerTestData.TokenizerJson(TokenizerTestData.Llama3Package))
                    TokenizerTestData.WriteLlama3Gguf(json, path);
                break;
        }
        var watch = Stopwatch.StartNew();
        MomeTokenizer mome;
        using (var model = MomeModel.Open(path, metadataOnly: true))
            mome = MomeTokenizer.FromModel(model);
        var buildTime = watch.Elapsed;
        return new Pair(mome, TokenizerOracle.Load(path), buildTime);
    }

    /// <summary>The synthetic tiny vocabulary with the flags llama.cpp reads set the other way.</summary>
    private void WriteTinyWithFlags(string path)
    {
        var source = Path.Combine(_dir, "tiny-source.gguf");
        MomeModel.CreateSynthetic(SyntheticModelConfig.Preset("tiny"), source);
        using var model = MomeModel.Open(source, metadataOnly: true);
        var meta = model.Metadata;
        var n = (int)meta["tokenizer.ggml.tokens"].Count;
        var b = TokenizerTestData.VocabOnlyLlama()
            .Str("tokenizer.ggml.model", "llama")
            .StrArray("tokenizer.ggml.tokens", meta["tokenizer.ggml.tokens"].GetStrings())
            .F32Array("tokenizer.ggml.scores", [.. Enumerable.Range(0, n).Select(i => (float)meta["tokenizer.ggml.scores"].GetDouble((ulong)i))])
            .I32Array("tokenizer.ggml.token_type", [.. Enumerable.Range(0, n).Select(i => (int)meta["tokenizer.ggml.token_type"].GetInt64((ulong)i))])
            .Bool("tokenizer.ggml.add_space_prefix", false)
            .Bool("tokenizer.ggml.add_bos_token", false)
            .Bool("tokenizer.ggml.add_eos_token", true);
        File.WriteAllBytes(path, b.Build());
    }

    /// <summary>llama.cpp's clean-up of tokenization spaces (<c>llama_vocab::impl::detokenize</c>,
    /// <c>clean_spaces</c>): " ?", " !", " .", " ," lose the space; " ' " loses both; " 's", " 'm",
    /// " 're", " 've" lose the space.</summary>
    private static string LlamaCppCleanUpSpaces(string text)
    {
        var t = new StringBuilder(text);
        for (var i = 1; i < t.Length; i++)
            if (t[i - 1] == ' ' && t[i] is '?' or '!' or '.' or ',')
                t.Remove(--i, 1);
        for (var i = 1; i + 1 < t.Length; i++)
            if (t[i] == '\'' && t[i - 1] == ' ' && t[i + 1] == ' ')
            {
                t.Remove(i + 1, 1);
                t.Remove(--i, 1);
            }
        for (var i = 1; i + 1 < t.Length; i++)
        {
            if (t[i - 1] != ' ' || t[i] != '\'') continue;
            var x1 = t[i + 1];
            var x2 = i + 2 < t.Length ? t[i + 2] : '\0';
            if (x1 is 's' or 'm' || (x1 == 'r' && x2 == 'e') || (x1 == 'v' && x2 == 'e')) t.Remove(--i, 1);
        }
        return t.ToString();
    }

    private static string Show(string text) =>
        "\"" + string.Concat(text.Select(c => c switch
        {
            '\n' => "\\n",
            '\r' => "\\r",
            '\t' => "\\t",
            _ when char.IsControl(c) || char.IsSurrogate(c) => $"\\u{(int)c:X4}",
            _ => c.ToString(),
        })) + "\"";
}
