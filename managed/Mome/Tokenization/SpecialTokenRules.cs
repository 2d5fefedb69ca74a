namespace Mome;

/// <summary>
/// llama.cpp's text-based rules for special tokens (<c>llama_vocab::load</c>): it finds the
/// end-of-turn, end-of-message and fill-in-the-middle tokens by their text when the file does
/// not name them, collects every end-of-generation token, and makes each of them a control
/// token (so that they are parsed only with <c>parse_special</c>).
/// </summary>
/// <remarks>Workarounds llama.cpp keeps for non-Llama vocabularies (gpt-oss, Gemma 4) are left
/// out: those vocabularies are not ones <see cref="MomeTokenizer"/> accepts.</remarks>
internal static class SpecialTokenRules
{
    private static readonly HashSet<string> EndOfTurnTexts =
    [
        "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|end_of_text|>", "<EOT>", "_<EOT>",
        "[EOT]", "<｜end▁of▁sentence｜>", "<end_of_utterance>",
    ];

    private static readonly HashSet<string> EndOfMessageTexts = ["<|eom_id|>"];

    private static readonly HashSet<string> FimPrefixTexts =
        ["<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<｜fim▁begin｜>", "<PRE>", "▁<PRE>", "<|code_prefix|>", "<|prefix|>"];

    private static readonly HashSet<string> FimSuffixTexts =
        ["<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<｜fim▁hole｜>", "<SUF>", "▁<SUF>", "<|code_suffix|>", "<|suffix|>"];

    private static readonly HashSet<string> FimMiddleTexts =
        ["<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<｜fim▁end｜>", "<MID>", "▁<MID>", "<|code_middle|>", "<|middle|>"];

    private static readonly HashSet<string> FimPadTexts = ["<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"];

    private static readonly HashSet<string> FimRepoTexts = ["<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"];

    private static readonly HashSet<string> FimSeparatorTexts = ["<|file_sep|>"];

    private static readonly HashSet<string> EndOfGenerationTexts =
    [
        "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>", "<|calls|>", "<end_of_turn>",
        "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]", "<|end_of_text|>",
        "<end_of_utterance>", "<eos>", "<turn|>", "<|tool_response>", "<｜end▁of▁sentence｜>", "[e~[",
    ];

    public static void Apply(GgufVocabulary vocab)
    {
        var texts = vocab.Texts;
        var attributes = vocab.Attributes;

        // A token the file does not name is found by its text (the lowest id when several match)
        // and becomes a control token.
        int Detect(int id, HashSet<string> candidates)
        {
            if (id != GgufVocabulary.None) return id;
            for (var t = 0; t < texts.Length; t++)
            {
                if (!candidates.Contains(texts[t])) continue;
                attributes[t] |= TokenAttributes.Control;
                return t;
            }
            return GgufVocabulary.None;
        }

        var endOfTurn = Detect(vocab.EndOfTurn, EndOfTurnTexts);
        var endOfMessage = Detect(vocab.EndOfMessage, EndOfMessageTexts);
        var fimPrefix = Detect(vocab.FimPrefix, FimPrefixTexts);
        var fimSuffix = Detect(vocab.FimSuffix, FimSuffixTexts);
        var fimMiddle = Detect(vocab.FimMiddle, FimMiddleTexts);
        var fimPad = Detect(vocab.FimPad, FimPadTexts);
        var fimRepo = Detect(vocab.FimRepo, FimRepoTexts);
        var fimSeparator = Detect(vocab.FimSeparator, FimSeparatorTexts);
        vocab.SetDetected(endOfTurn, endOfMessage, fimPrefix, fimSuffix, fimMiddle, fimPad, fimRepo, fimSeparator);

        var eog = vocab.EndOfGeneration;
        foreach (var id in new[] { fimPad, fimRepo, fimSeparator })
            if (id != GgufVocabulary.None) eog.Add(id);
        for (var t = 0; t < texts.Length; t++)
        {
            if (!EndOfGenerationTexts.Contains(texts[t])) continue;
            eog.Add(t);
            attributes[t] |= TokenAttributes.Control;
        }
        foreach (var id in new[] { vocab.Eos, endOfTurn, endOfMessage })
            if (id != GgufVocabulary.None) eog.Add(id);
    }
}
