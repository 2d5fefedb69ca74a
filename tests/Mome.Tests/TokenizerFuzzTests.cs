namespace Mome.Tests;

/// <summary>
/// The tokenizer fuzzed in process against llama.cpp (<see cref="InProcessFuzzer{T}"/>):
/// mutated texts (lone surrogates, control characters, special-token look-alikes, inputs
/// repeated into long ones) must encode to llama.cpp's tokens, and mutated token sequences
/// must decode to llama.cpp's text or be refused naming the id outside the vocabulary.
/// </summary>
public sealed partial class TokenizerTests
{
    private static readonly char[][] TextDictionary =
    [
        .. new[]
        {
            "<s>", "</s>", "<unk>", "<|begin_of_text|>", "<|eot_id|>", "<|end_of_text|>", "<|start_header_id|>", "<|im_start|>",
            "<s", "</s", "<|eot_id", "|>", "<0x41>", "\u2581", " ", "  ", "\n", "\r\n", "\t", "'s", "'ll", "123456", "\ud83d\ude00",
            "\ud800", "\udfff", "\u0000", "\ufeff", "\u200d", "e\u0301", "日本語", "Привет",
        }.Select(s => s.ToCharArray()),
    ];

    [Test]
    public void FuzzedTextsEncodeAsLlamaCppEncodesThem([Values] Vocab vocab)
    {
        var (mome, llama, _) = Get(vocab);
        var fuzzer = new InProcessFuzzer<char>(TokenizerCorpus.Texts.Select(t => t.ToCharArray()), TextDictionary,
            FuzzInputs.RandomChar, maxLength: 1 << 13);
        var flags = 0;
        fuzzer.Run($"encode-{vocab}", InProcessFuzzer<char>.Iterations(600), chars =>
        {
            var text = new string(chars);
            var (addSpecial, parseSpecial) = ((flags & 1) != 0, (flags++ & 2) != 0);
            var expected = llama.Tokenize(text, addSpecial, parseSpecial);
            var actual = mome.Encode(text, addSpecial, parseSpecial);
            FuzzInputs.Check(actual.AsSpan().SequenceEqual(expected),
                $"{Show(text)} (addSpecial {addSpecial}, parseSpecial {parseSpecial}): llama.cpp [{string.Join(", ", expected)}], Mome [{string.Join(", ", actual)}]");
            return true;
        }, _ => false, FuzzInputs.Utf16);
    }

    [Test]
    public void FuzzedTokenSequencesDecodeAsLlamaCppDecodesThem([Values] Vocab vocab)
    {
        var (mome, llama, _) = Get(vocab);
        var seeds = TokenizerCorpus.Texts.Select(t => llama.Tokenize(t, addSpecial: true, parseSpecial: true));
        var n = mome.VocabSize;
        var fuzzer = new InProcessFuzzer<int>(seeds, [], rng => rng.Next(50) == 0 ? rng.Next(-3, 3) + (rng.Next(2) == 0 ? 0 : n) : rng.Next(n),
            maxLength: 1 << 12);
        var skip = false;
        var (decoded, refused) = fuzzer.Run($"decode-{vocab}", InProcessFuzzer<int>.Iterations(1500), tokens =>
        {
            skip = !skip;
            var actual = mome.Decode(tokens, skip);
            FuzzInputs.Check(tokens.All(t => t >= 0 && t < n), $"an id outside 0..{n - 1} was decoded");
            var expected = llama.Detokenize(tokens, removeSpecial: skip, unparseSpecial: !skip);
            // llama.cpp also cleans up BPE tokenization spaces; Mome does not (see DecodeMatchesLlamaCppDetokenize).
            var comparable = vocab == Vocab.Llama3 ? LlamaCppCleanUpSpaces(actual) : actual;
            FuzzInputs.Check(comparable == expected,
                $"tokens [{string.Join(", ", tokens)}] (skipSpecial {skip}): llama.cpp {Show(expected)}, Mome {Show(comparable)}");
            return true;
        }, e => e is ArgumentOutOfRangeException r && r.Message.Contains("outside the vocabulary"),
            t => [.. t.SelectMany(BitConverter.GetBytes)]);
        Assert.That(decoded, Is.GreaterThan(refused), "most sequences stay inside the vocabulary");
    }
}
