namespace Mome;

/// <summary>A piece of input: either plain text to tokenize or a special token found in it.</summary>
internal readonly record struct TextFragment(int Token, int Start, int Length)
{
    public bool IsToken => Token >= 0;

    public static TextFragment Text(int start, int length) => new(-1, start, length);
}

/// <summary>
/// Cuts special tokens out of the input before tokenization, as llama.cpp's
/// <c>tokenizer_st_partition</c>: the candidates are the control, user-defined and unknown
/// tokens, longest text first; each in turn splits every remaining text fragment at each of
/// its occurrences. Control and unknown tokens are candidates only when special tokens are
/// parsed; user-defined tokens always are.
/// </summary>
internal sealed class SpecialTokenSplitter
{
    private readonly string[] _texts;
    private readonly int[] _candidates;       // control, user-defined and unknown tokens, longest first
    private readonly bool[] _onlyWhenParsing;  // per candidate: control or unknown

    public SpecialTokenSplitter(GgufVocabulary vocab)
    {
        _texts = vocab.Texts;
        var candidates = new List<int>();
        for (var t = 0; t < vocab.Count; t++)
            if ((vocab.Attributes[t] & (TokenAttributes.Control | TokenAttributes.UserDefined | TokenAttributes.Unknown)) != 0)
                candidates.Add(t);
        // llama.cpp orders by UTF-8 length only; ties keep id order here.
        var utf8Lengths = candidates.ToDictionary(t => t, t => System.Text.Encoding.UTF8.GetByteCount(_texts[t]));
        _candidates = [.. candidates.OrderByDescending(t => utf8Lengths[t]).ThenBy(t => t)];
        _onlyWhenParsing = [.. _candidates.Select(t => (vocab.Attributes[t] & (TokenAttributes.Control | TokenAttributes.Unknown)) != 0)];
    }

    public List<TextFragment> Split(string text, bool parseSpecial)
    {
        var fragments = new List<TextFragment>();
        if (text.Length == 0) return fragments;
        fragments.Add(TextFragment.Text(0, text.Length));
        for (var c = 0; c < _candidates.Length; c++)
        {
            if (_onlyWhenParsing[c] && !parseSpecial) continue;
            var token = _candidates[c];
            var needle = _texts[token];
            for (var f = 0; f < fragments.Count; f++)
            {
                var fragment = fragments[f];
                if (fragment.IsToken) continue;
                var at = text.IndexOf(needle, fragment.Start, fragment.Length, StringComparison.Ordinal);
                if (at < 0) continue;
                // Replace this fragment by: text before, the token, text after (searched next).
                var end = fragment.Start + fragment.Length;
                var pieces = new List<TextFragment>(3);
                if (at > fragment.Start) pieces.Add(TextFragment.Text(fragment.Start, at - fragment.Start));
                pieces.Add(new TextFragment(token, at, needle.Length));
                var after = at + needle.Length;
                if (after < end) pieces.Add(TextFragment.Text(after, end - after));
                fragments.RemoveAt(f);
                fragments.InsertRange(f, pieces);
                f += pieces.Count - (after < end ? 2 : 1); // continue with the text after the token
            }
        }
        return fragments;
    }
}
