using System.Globalization;
using System.Text;

namespace Mome.Ilgpu.Banks;

/// <summary>
/// A JSON value of a bank file's header, read with the native reader's rules (core/json.cpp):
/// depth at most 32, duplicate keys kept in file order (the first wins a lookup), numbers parsed
/// from their literal and refused when not finite, strings kept as their bytes (one char per
/// byte, Latin-1) so that lookups and messages see exactly what the native reader sees.
/// </summary>
internal sealed class HeaderJson
{
    public enum Kind { Null, Bool, Number, String, Array, Object }

    public Kind Type { get; private init; }
    public double Number { get; private init; }

    /// <summary>String: the decoded bytes; Number: the literal as written.</summary>
    public string Text { get; private init; } = "";

    public List<HeaderJson> Items { get; } = [];
    public List<(string Key, HeaderJson Value)> Members { get; } = [];

    public HeaderJson? Find(string key)
    {
        foreach (var (k, v) in Members)
            if (k == key) return v;
        return null;
    }

    /// <summary>A header string as the text it encodes (UTF-8), for messages.</summary>
    public static string Display(string bytes) => Encoding.UTF8.GetString(Encoding.Latin1.GetBytes(bytes));

    /// <summary>Parses a whole document; MomeException(FormatError) "WHAT: malformed JSON header at byte N: WHY" otherwise.</summary>
    public static HeaderJson Parse(ReadOnlySpan<byte> text, string what) => new Parser(text.ToArray(), what).Document();

    private sealed class Parser(byte[] s, string what)
    {
        private const int MaxDepth = 32;
        private int _pos;

        public HeaderJson Document()
        {
            var v = Value(0);
            SkipSpace();
            if (_pos != s.Length) throw Error("unexpected text after the end");
            return v;
        }

        private MomeException Error(string why) => new(MomeErrorCode.FormatError, $"{what}: malformed JSON header at byte {_pos}: {why}");

        private void SkipSpace()
        {
            while (_pos < s.Length && s[_pos] is (byte)' ' or (byte)'\n' or (byte)'\r' or (byte)'\t') _pos++;
        }

        private bool Consume(char c)
        {
            SkipSpace();
            if (_pos < s.Length && s[_pos] == c)
            {
                _pos++;
                return true;
            }
            return false;
        }

        private void Expect(char c)
        {
            if (!Consume(c)) throw Error($"expected '{c}'");
        }

        private bool At(string word) => _pos + word.Length <= s.Length && Encoding.Latin1.GetString(s, _pos, word.Length) == word;

        private HeaderJson Value(int depth)
        {
            if (depth > MaxDepth) throw Error("nested too deeply");
            SkipSpace();
            if (_pos >= s.Length) throw Error("unexpected end");
            var c = (char)s[_pos];
            if (c == '{')
            {
                _pos++;
                var o = new HeaderJson { Type = Kind.Object };
                if (Consume('}')) return o;
                do
                {
                    SkipSpace();
                    var key = StringLiteral();
                    Expect(':');
                    o.Members.Add((key, Value(depth + 1)));
                } while (Consume(','));
                Expect('}');
                return o;
            }
            if (c == '[')
            {
                _pos++;
                var a = new HeaderJson { Type = Kind.Array };
                if (Consume(']')) return a;
                do a.Items.Add(Value(depth + 1));
                while (Consume(','));
                Expect(']');
                return a;
            }
            if (c == '"') return new HeaderJson { Type = Kind.String, Text = StringLiteral() };
            foreach (var (word, kind) in new[] { ("true", Kind.Bool), ("false", Kind.Bool), ("null", Kind.Null) })
                if (At(word))
                {
                    _pos += word.Length;
                    return new HeaderJson { Type = kind, Number = word == "true" ? 1 : 0 };
                }
            if (c == '-' || c is >= '0' and <= '9') return NumberLiteral();
            throw Error($"unexpected character '{c}'");
        }

        private HeaderJson NumberLiteral()
        {
            var start = _pos++;
            while (_pos < s.Length && "0123456789.eE+-".Contains((char)s[_pos])) _pos++;
            var literal = Encoding.Latin1.GetString(s, start, _pos - start);
            // strtod's grammar for these characters: an optional sign, digits with at most one
            // point (at least one digit), then an optional exponent with digits.
            if (!IsDecimal(literal) || !double.TryParse(literal, NumberStyles.Float, CultureInfo.InvariantCulture, out var value))
                throw Error($"bad number '{literal}'");
            if (!double.IsFinite(value)) throw Error($"number '{literal}' is out of range");
            return new HeaderJson { Type = Kind.Number, Number = value, Text = literal };
        }

        private static bool IsDecimal(string t)
        {
            var i = t.StartsWith('-') ? 1 : 0;
            int digits = 0, points = 0;
            for (; i < t.Length && (char.IsAsciiDigit(t[i]) || t[i] == '.'); i++)
                if (t[i] == '.') points++;
                else digits++;
            if (digits == 0 || points > 1) return false;
            if (i == t.Length) return true;
            if (t[i] is not ('e' or 'E')) return false;
            i++;
            if (i < t.Length && t[i] is '+' or '-') i++;
            var exponentDigits = 0;
            for (; i < t.Length && char.IsAsciiDigit(t[i]); i++) exponentDigits++;
            return exponentDigits > 0 && i == t.Length;
        }

        private string StringLiteral()
        {
            if (_pos >= s.Length || s[_pos] != '"') throw Error("expected a string");
            _pos++;
            var out_ = new StringBuilder();
            while (true)
            {
                if (_pos >= s.Length) throw Error("unterminated string");
                var c = (char)s[_pos++];
                if (c == '"') return out_.ToString();
                if (c < 0x20) throw Error("control character in a string");
                if (c != '\\')
                {
                    out_.Append(c);
                    continue;
                }
                if (_pos >= s.Length) throw Error("unterminated escape");
                var e = (char)s[_pos++];
                switch (e)
                {
                    case '"' or '\\' or '/': out_.Append(e); break;
                    case 'b': out_.Append('\b'); break;
                    case 'f': out_.Append('\f'); break;
                    case 'n': out_.Append('\n'); break;
                    case 'r': out_.Append('\r'); break;
                    case 't': out_.Append('\t'); break;
                    case 'u':
                        if (_pos + 4 > s.Length) throw Error("short \\u escape");
                        for (var k = 0; k < 4; k++)
                            if (!char.IsAsciiHexDigit((char)s[_pos + k])) throw Error("\\u escape needs four hex digits");
                        var cp = int.Parse(Encoding.Latin1.GetString(s, _pos, 4), NumberStyles.HexNumber, CultureInfo.InvariantCulture);
                        _pos += 4;
                        AppendUtf8Bytes(out_, cp);
                        break;
                    default: throw Error($"bad escape '\\{e}'");
                }
            }
        }

        // The code point's UTF-8 bytes, surrogates included, as the native reader writes them.
        private static void AppendUtf8Bytes(StringBuilder b, int cp)
        {
            if (cp < 0x80) b.Append((char)cp);
            else if (cp < 0x800) b.Append((char)(0xC0 | (cp >> 6))).Append((char)(0x80 | (cp & 0x3F)));
            else b.Append((char)(0xE0 | (cp >> 12))).Append((char)(0x80 | ((cp >> 6) & 0x3F))).Append((char)(0x80 | (cp & 0x3F)));
        }
    }
}
