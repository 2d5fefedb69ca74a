using Mome.Gguf;
using System.Text;

namespace Mome;

/// <summary>
/// A model's tokenizer, built from its GGUF vocabulary and identical to llama.cpp's
/// (<c>llama_tokenize</c> / <c>llama_detokenize</c>) for the two kinds Llama models use:
/// <list type="bullet">
/// <item><c>tokenizer.ggml.model</c> = "llama": SentencePiece-style pieces with scores and byte
/// fallback (Llama 1/2, Mome's synthetic models);</item>
/// <item><c>tokenizer.ggml.model</c> = "gpt2" with <c>tokenizer.ggml.pre</c> = "llama-bpe":
/// byte-level BPE with the Llama-3 pre-tokenizer (Llama 3).</item>
/// </list>
/// Instances are immutable and safe to use from several threads.
/// </summary>
public sealed class MomeTokenizer
{
    private const char SentencePieceSpace = '\u2581';

    private readonly GgufVocabulary _vocab;
    private readonly SpecialTokenSplitter _splitter;
    private readonly SentencePieceMerger? _sentencePiece;
    private readonly BpeMerger? _bpe;
    private readonly byte[]?[] _pieces;

    private MomeTokenizer(GgufVocabulary vocab)
    {
        _vocab = vocab;
        _splitter = new SpecialTokenSplitter(vocab);
        if (vocab.Kind == VocabularyKind.SentencePiece) _sentencePiece = new SentencePieceMerger(vocab);
        else _bpe = new BpeMerger(vocab);
        _pieces = new byte[vocab.Count][];
    }

    /// <summary>Builds the tokenizer of a model (which may be opened metadata-only); it keeps no
    /// reference to the model, which may be disposed afterwards.</summary>
    /// <exception cref="MomeException">The file has no tokenizer, one of another kind, or
    /// malformed tokenizer metadata; the message names the file and the key.</exception>
    public static MomeTokenizer FromModel(MomeModel model)
    {
        ArgumentNullException.ThrowIfNull(model);
        return new MomeTokenizer(GgufVocabulary.Read(model));
    }

    /// <summary>The tokenizer a GGUF file's metadata describes, as the managed GGUF reader read it.</summary>
    internal static MomeTokenizer FromFile(GgufFile file) =>
        new(GgufVocabulary.Read(file.Metadata.ToDictionary(kv => kv.Key, kv => new MetadataValue(kv.Value)), file.Path));

    public int VocabSize => _vocab.Count;

    public int? BosToken => Nullable(_vocab.Bos);

    public int? EosToken => Nullable(_vocab.Eos);

    /// <summary>Whether <see cref="Encode"/> with <c>addSpecial</c> starts with <see cref="BosToken"/>.</summary>
    public bool AddBos => _vocab.AddBos;

    /// <summary>Whether <see cref="Encode"/> with <c>addSpecial</c> ends with <see cref="EosToken"/>.</summary>
    public bool AddEos => _vocab.AddEos;

    /// <summary>
    /// Tokenizes <paramref name="text"/> as <c>llama_tokenize(text, add_special, parse_special)</c>.
    /// </summary>
    /// <param name="text">The text; a lone surrogate in it counts as U+FFFD, as its UTF-8 encoding does.</param>
    /// <param name="addSpecial">Add BOS/EOS where the vocabulary asks for them (<see cref="AddBos"/>, <see cref="AddEos"/>).</param>
    /// <param name="parseSpecial">Turn the text of control tokens (e.g. "&lt;|eot_id|&gt;", "&lt;/s&gt;")
    /// into those tokens; otherwise it is tokenized as plain text. User-defined tokens are always recognised.</param>
    public int[] Encode(string text, bool addSpecial = true, bool parseSpecial = false)
    {
        ArgumentNullException.ThrowIfNull(text);
        text = WithoutLoneSurrogates(text);
        var output = new List<int>(text.Length / 3 + 2);
        if (addSpecial && _vocab.AddBos) output.Add(_vocab.Bos);

        var previousWasToken = true; // SentencePiece: a space prefix also follows each special token
        foreach (var fragment in _splitter.Split(text, parseSpecial))
        {
            if (fragment.IsToken)
            {
                output.Add(fragment.Token);
                previousWasToken = true;
                continue;
            }
            if (_sentencePiece is not null)
            {
                _sentencePiece.Encode(EscapeSpaces(text, fragment, prefixSpace: _vocab.AddSpacePrefix && previousWasToken), output);
                previousWasToken = false;
            }
            else
            {
                foreach (var (start, length) in Llama3PreTokenizer.Split(text, fragment.Start, fragment.Length))
                    _bpe!.Encode(ByteLevelMapping.Encode(Encoding.UTF8.GetBytes(text, start, length)), ignoreMerges: true, output);
            }
        }

        if (addSpecial && _vocab.AddEos) output.Add(_vocab.Eos);
        return [.. output];
    }

    /// <summary>
    /// The bytes a token stands for in text, as <c>llama_token_to_piece(token, special: true)</c>:
    /// byte tokens give their byte, SentencePiece pieces their text with U+2581 as a space,
    /// byte-level BPE tokens their bytes, control and user-defined tokens their text; unused
    /// tokens nothing.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The id is not in the vocabulary.</exception>
    public byte[] TokenBytes(int token)
    {
        CheckToken(token);
        return (byte[])Piece(token).Clone();
    }

    /// <summary>
    /// The text of <paramref name="tokens"/>, as <c>llama_detokenize(remove_special: skipSpecial,
    /// unparse_special: !skipSpecial)</c>: with <paramref name="skipSpecial"/> control tokens
    /// contribute nothing and a leading BOS (trailing EOS) that <see cref="Encode"/> would add is
    /// dropped; the space a SentencePiece vocabulary prefixes to the text is removed from the first
    /// token, unless a dropped BOS precedes it. Bytes that are no valid UTF-8 (a sequence cut at the
    /// end included) become U+FFFD; <see cref="TokenTextDecoder"/> holds such a tail back instead.
    /// </summary>
    /// <remarks>Unlike llama.cpp, no "clean-up of tokenization spaces" is applied to byte-level BPE
    /// text (llama.cpp removes the space in " ." or " 's"): decoding stays the exact inverse of
    /// encoding, and equal to what the streaming decoder yields.</remarks>
    /// <exception cref="ArgumentOutOfRangeException">A token id is not in the vocabulary.</exception>
    public string Decode(ReadOnlySpan<int> tokens, bool skipSpecial = true)
    {
        foreach (var t in tokens) CheckToken(t);
        var bytes = new List<byte>(tokens.Length * 4);
        var stripSpace = _vocab.AddSpacePrefix;
        if (skipSpecial && _vocab.AddBos && tokens.Length > 0 && tokens[0] == _vocab.Bos)
        {
            stripSpace = false;
            tokens = tokens[1..];
        }
        if (skipSpecial && _vocab.AddEos && tokens.Length > 0 && tokens[^1] == _vocab.Eos)
            tokens = tokens[..^1];
        foreach (var t in tokens)
        {
            var piece = RenderedPiece(t, skipSpecial);
            if (stripSpace && piece.Length > 0 && piece[0] == (byte)' ') piece = piece[1..];
            stripSpace = false;
            bytes.AddRange(piece);
        }
        return Encoding.UTF8.GetString(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(bytes));
    }

    /// <summary>True for the tokens that end generation as llama.cpp determines them
    /// (<c>llama_vocab_is_eog</c>): EOS, end-of-turn and end-of-message tokens, and tokens such as
    /// "&lt;|eot_id|&gt;", "&lt;|end_of_text|&gt;", "&lt;/s&gt;" found by their text. False for ids outside the vocabulary.</summary>
    public bool IsEndOfGeneration(int token) => _vocab.EndOfGeneration.Contains(token);

    /// <summary>The piece of a token as detokenization renders it (control and unknown tokens
    /// render as nothing when special tokens are skipped).</summary>
    internal ReadOnlySpan<byte> RenderedPiece(int token, bool skipSpecial) =>
        skipSpecial && (_vocab.Attributes[token] & (TokenAttributes.Control | TokenAttributes.Unknown)) != 0
            ? ReadOnlySpan<byte>.Empty
            : Piece(token);

    internal bool StripsLeadingSpace => _vocab.AddSpacePrefix;

    internal void CheckToken(int token)
    {
        if ((uint)token >= (uint)_vocab.Count)
            throw new ArgumentOutOfRangeException(nameof(token), token,
                $"token id {token} is outside the vocabulary of {_vocab.Count} tokens");
    }

    private byte[] Piece(int token) => _pieces[token] ??= BuildPiece(token);

    private byte[] BuildPiece(int token)
    {
        var text = _vocab.Texts[token];
        var attributes = _vocab.Attributes[token];
        if ((attributes & (TokenAttributes.Unknown | TokenAttributes.Control | TokenAttributes.UserDefined)) != 0)
            return Encoding.UTF8.GetBytes(text);
        if ((attributes & TokenAttributes.Normal) != 0)
            return _vocab.Kind == VocabularyKind.SentencePiece
                ? Encoding.UTF8.GetBytes(text.Replace(SentencePieceSpace, ' '))
                : ByteLevelBytes(text);
        if ((attributes & TokenAttributes.Byte) != 0)
            return [ByteOfByteToken(text)];
        return [];
    }

    /// <summary>The bytes behind a byte-level token; as llama.cpp, a character outside the
    /// mapping is rendered as "[UNK_BYTE_0x..]" followed by the token text.</summary>
    private static byte[] ByteLevelBytes(string text)
    {
        var bytes = new List<byte>(text.Length);
        Span<byte> utf8 = stackalloc byte[4];
        foreach (var rune in text.EnumerateRunes())
        {
            if (rune.IsBmp && ByteLevelMapping.TryDecode((char)rune.Value, out var b))
            {
                bytes.Add(b);
                continue;
            }
            var n = rune.EncodeToUtf8(utf8);
            var hex = Convert.ToHexStringLower(utf8[..n]);
            bytes.AddRange(Encoding.UTF8.GetBytes($"[UNK_BYTE_0x{hex}{text}]"));
        }
        return [.. bytes];
    }

    /// <summary>"&lt;0xXX&gt;" -> XX, read like llama.cpp (two hex digits at offset 3; 0 when absent).</summary>
    private static byte ByteOfByteToken(string text)
    {
        var digits = text.Length >= 5 ? text.AsSpan(3, 2) : text.AsSpan(Math.Min(3, text.Length));
        var value = 0;
        foreach (var c in digits)
        {
            var d = c is >= '0' and <= '9' ? c - '0' : c is >= 'a' and <= 'f' ? c - 'a' + 10 : c is >= 'A' and <= 'F' ? c - 'A' + 10 : -1;
            if (d < 0) break;
            value = value * 16 + d;
        }
        return (byte)value;
    }

    /// <summary>SentencePiece's view of a fragment: spaces as U+2581, optionally one more in front.</summary>
    private static string EscapeSpaces(string text, TextFragment fragment, bool prefixSpace) =>
        string.Create(fragment.Length + (prefixSpace ? 1 : 0), (text, fragment, prefixSpace), static (chars, state) =>
        {
            if (state.prefixSpace) chars[0] = SentencePieceSpace;
            state.text.AsSpan(state.fragment.Start, state.fragment.Length)
                .Replace(chars[(state.prefixSpace ? 1 : 0)..], ' ', SentencePieceSpace);
        });

    /// <summary>Text as the UTF-8 bytes llama.cpp would get: a lone surrogate becomes U+FFFD.</summary>
    private static string WithoutLoneSurrogates(string text)
    {
        foreach (var c in text)
            if (char.IsSurrogate(c))
                return Encoding.UTF8.GetString(Encoding.UTF8.GetBytes(text));
        return text;
    }

    private static int? Nullable(int id) => id == GgufVocabulary.None ? null : id;
}
