using System.Text;

namespace Mome;

/// <summary>
/// Turns tokens into text as they arrive (during generation): each <see cref="Append"/> returns
/// the text that became complete, holding back a UTF-8 sequence that a later token finishes
/// (a byte-fallback character split over several tokens, for example). The concatenated output,
/// <see cref="Flush"/> included, equals <see cref="MomeTokenizer.Decode"/> of all the tokens,
/// except that a trailing EOS is not dropped (it is a control token, so it renders as nothing
/// anyway when special tokens are skipped).
/// </summary>
public sealed class TokenTextDecoder
{
    private readonly MomeTokenizer _tokenizer;
    private readonly bool _skipSpecial;
    private readonly Decoder _utf8 = Encoding.UTF8.GetDecoder();
    private bool _first = true;
    private bool _stripSpace;

    public TokenTextDecoder(MomeTokenizer tokenizer, bool skipSpecial = true)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        _tokenizer = tokenizer;
        _skipSpecial = skipSpecial;
        _stripSpace = tokenizer.StripsLeadingSpace;
    }

    /// <summary>Adds one token; returns the text it completes (possibly empty).</summary>
    /// <exception cref="ArgumentOutOfRangeException">The id is not in the vocabulary.</exception>
    public string Append(int token)
    {
        _tokenizer.CheckToken(token);
        if (_first)
        {
            _first = false;
            if (_skipSpecial && _tokenizer.AddBos && token == _tokenizer.BosToken)
            {
                _stripSpace = false;
                return string.Empty;
            }
        }
        var piece = _tokenizer.RenderedPiece(token, _skipSpecial);
        if (_stripSpace && piece.Length > 0 && piece[0] == (byte)' ') piece = piece[1..];
        _stripSpace = false;
        return Convert(piece, flush: false);
    }

    /// <summary>Ends the stream: an unfinished UTF-8 sequence comes out as U+FFFD.</summary>
    public string Flush()
    {
        var text = Convert([], flush: true);
        _first = true;
        _stripSpace = _tokenizer.StripsLeadingSpace;
        return text;
    }

    private string Convert(ReadOnlySpan<byte> bytes, bool flush)
    {
        var chars = new char[_utf8.GetCharCount(bytes, flush)];
        var count = _utf8.GetChars(bytes, chars, flush);
        return new string(chars, 0, count);
    }
}
