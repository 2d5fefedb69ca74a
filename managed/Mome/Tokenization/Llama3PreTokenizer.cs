using System.Globalization;
using System.Text;

namespace Mome;

/// <summary>
/// Splits text into words with the Llama-3 pattern
/// <c>(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+</c>,
/// matched over code points the way llama.cpp's hand-written matcher
/// (<c>unicode_regex_split_custom_llama3</c>) does. A .NET <c>Regex</c> would see UTF-16 code
/// units, so letters and digits outside the BMP would not count as \p{L} or \p{N} there.
/// </summary>
internal static class Llama3PreTokenizer
{
    [Flags]
    private enum CharClass : byte
    {
        OutOfRange = 0,
        Other = 1,
        Letter = 2,
        Number = 4,
        Whitespace = 8,
    }

    /// <summary>The words of <paramref name="text"/>[start, start + length), as (start, length) in chars.</summary>
    public static List<(int Start, int Length)> Split(string text, int start, int length)
    {
        // Code points of the fragment and where each starts in the string.
        var cpts = new List<int>(length);
        var offsets = new List<int>(length + 1);
        for (var i = start; i < start + length;)
        {
            var rune = Rune.GetRuneAt(text, i);
            cpts.Add(rune.Value);
            offsets.Add(i);
            i += rune.Utf16SequenceLength;
        }
        offsets.Add(start + length);

        var n = cpts.Count;
        var words = new List<(int, int)>();
        var wordStart = 0;
        void Emit(int end)
        {
            if (end > wordStart) words.Add((offsets[wordStart], offsets[end] - offsets[wordStart]));
            wordStart = end;
        }
        int Cpt(int p) => p < n ? cpts[p] : -1;
        CharClass Class(int p) => p < n ? Classify(cpts[p]) : CharClass.OutOfRange;

        for (var pos = 0; pos < n;)
        {
            var c = cpts[pos];
            var cls = Class(pos);

            // (?i:'s|'t|'re|'ve|'m|'ll|'d)
            if (c == '\'' && pos + 1 < n)
            {
                var c1 = ToLowerAscii(cpts[pos + 1]);
                if (c1 is 's' or 't' or 'm' or 'd')
                {
                    Emit(pos += 2);
                    continue;
                }
                if (pos + 2 < n)
                {
                    var c2 = ToLowerAscii(cpts[pos + 2]);
                    if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l'))
                    {
                        Emit(pos += 3);
                        continue;
                    }
                }
            }

            // [^\r\n\p{L}\p{N}]?\p{L}+
            if (c != '\r' && c != '\n' && (cls & CharClass.Number) == 0
                && ((cls & CharClass.Letter) != 0 || (Class(pos + 1) & CharClass.Letter) != 0))
            {
                pos++;
                while ((Class(pos) & CharClass.Letter) != 0) pos++;
                Emit(pos);
                continue;
            }

            // \p{N}{1,3}
            if ((cls & CharClass.Number) != 0)
            {
                var groupStart = pos;
                while ((Class(pos) & CharClass.Number) != 0)
                {
                    if (++pos - groupStart >= 3)
                    {
                        Emit(pos);
                        groupStart = pos;
                    }
                }
                Emit(pos);
                continue;
            }

            // ' ?[^\s\p{L}\p{N}]+[\r\n]*'
            var next = c == ' ' ? Class(pos + 1) : cls;
            if (IsOther(next) || (c == ' ' && next == CharClass.OutOfRange))
            {
                if (c == ' ') pos++;
                while (IsOther(Class(pos))) pos++;
                while (Cpt(pos) is '\r' or '\n') pos++;
                Emit(pos);
                continue;
            }

            var whitespace = 0;
            var lastLineBreakEnd = 0;
            while ((Class(pos + whitespace) & CharClass.Whitespace) != 0)
            {
                if (Cpt(pos + whitespace) is '\r' or '\n') lastLineBreakEnd = pos + whitespace + 1;
                whitespace++;
            }

            // \s*[\r\n]+
            if (lastLineBreakEnd > 0)
            {
                Emit(pos = lastLineBreakEnd);
                continue;
            }

            // \s+(?!\S): a run of whitespace before a non-space keeps its last one for the next word
            if (whitespace > 1 && pos + whitespace < n)
            {
                Emit(pos += whitespace - 1);
                continue;
            }

            // \s+
            if (whitespace > 0)
            {
                Emit(pos += whitespace);
                continue;
            }

            Emit(++pos);
        }
        return words;
    }

    private static bool IsOther(CharClass c) => c == CharClass.Other;

    private static int ToLowerAscii(int c) => c is >= 'A' and <= 'Z' ? c + 32 : c;

    private static CharClass Classify(int cpt)
    {
        if (cpt < 0x80)
        {
            if (cpt is >= 'a' and <= 'z' or >= 'A' and <= 'Z') return CharClass.Letter;
            if (cpt is >= '0' and <= '9') return CharClass.Number;
            if (cpt is ' ' or >= 0x09 and <= 0x0D) return CharClass.Whitespace;
            return CharClass.Other;
        }
        if (cpt == 0x85) return CharClass.Whitespace;
        return CharUnicodeInfo.GetUnicodeCategory(cpt) switch
        {
            UnicodeCategory.UppercaseLetter or UnicodeCategory.LowercaseLetter or UnicodeCategory.TitlecaseLetter
                or UnicodeCategory.ModifierLetter or UnicodeCategory.OtherLetter => CharClass.Letter,
            UnicodeCategory.DecimalDigitNumber or UnicodeCategory.LetterNumber or UnicodeCategory.OtherNumber => CharClass.Number,
            UnicodeCategory.SpaceSeparator or UnicodeCategory.LineSeparator or UnicodeCategory.ParagraphSeparator => CharClass.Whitespace,
            _ => CharClass.Other,
        };
    }
}
