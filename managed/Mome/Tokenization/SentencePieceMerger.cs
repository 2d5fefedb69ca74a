using System.Text;

namespace Mome;

/// <summary>
/// llama.cpp's SentencePiece-style tokenizer (<c>llm_tokenizer_spm_session</c>) over text whose
/// spaces are already U+2581: start from single characters, repeatedly merge the adjacent pair
/// whose concatenation is the vocabulary entry with the highest score (leftmost on ties), then
/// emit each piece, or the byte tokens of a piece that is no token.
/// </summary>
internal sealed class SentencePieceMerger
{
    private readonly GgufVocabulary _vocab;
    private readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> _tokens;
    private readonly int[] _byteTokens = new int[256];

    public SentencePieceMerger(GgufVocabulary vocab)
    {
        _vocab = vocab;
        _tokens = vocab.Ids.GetAlternateLookup<ReadOnlySpan<char>>();
        for (var b = 0; b < 256; b++)
        {
            // "<0xXX>" first, then the byte as a one-character string (as llama.cpp), then the
            // unknown token where llama.cpp fails (a SentencePiece vocabulary always has one: the
            // default is token 0).
            if (!vocab.Ids.TryGetValue($"<0x{b:X2}>", out var id) && !(b < 0x80 && vocab.Ids.TryGetValue(((char)b).ToString(), out id)))
                id = vocab.Unknown;
            _byteTokens[b] = id;
        }
    }

    public void Encode(string text, List<int> output)
    {
        // Symbols are code points (llama.cpp: UTF-8 sequences), linked in a list.
        var start = new List<int>(text.Length);
        var length = new List<int>(text.Length);
        for (var i = 0; i < text.Length; i += length[^1])
        {
            start.Add(i);
            length.Add(char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]) ? 2 : 1);
        }
        var n = start.Count;
        if (n == 0) return;
        var prev = new int[n];
        var next = new int[n];
        for (var i = 0; i < n; i++)
        {
            prev[i] = i - 1;
            next[i] = i + 1 < n ? i + 1 : -1;
        }

        var queue = new PriorityQueue<(int Left, int Right, int Size), (float Score, int Left)>(HighestScoreFirst.Instance);
        void TryAdd(int left, int right)
        {
            if (left < 0 || right < 0) return;
            var size = length[left] + length[right];
            if (_tokens.TryGetValue(text.AsSpan(start[left], size), out var token))
                queue.Enqueue((left, right, size), (_vocab.Scores[token], left));
        }
        for (var i = 1; i < n; i++) TryAdd(i - 1, i);

        while (queue.TryDequeue(out var pair, out _))
        {
            var (left, right) = (pair.Left, pair.Right);
            // Skip pairs that an earlier merge changed.
            if (length[left] == 0 || length[right] == 0 || length[left] + length[right] != pair.Size) continue;
            length[left] += length[right];
            length[right] = 0;
            next[left] = next[right];
            if (next[right] >= 0) prev[next[right]] = left;
            TryAdd(prev[left], left);
            TryAdd(left, next[left]);
        }

        Span<byte> utf8 = stackalloc byte[4];
        for (var i = 0; i >= 0; i = next[i])
        {
            var piece = text.AsSpan(start[i], length[i]);
            if (_tokens.TryGetValue(piece, out var token))
            {
                output.Add(token);
                continue;
            }
            // Only single characters can be left without a token (every merge made one).
            var count = Encoding.UTF8.GetBytes(piece, utf8);
            for (var b = 0; b < count; b++) output.Add(_byteTokens[utf8[b]]);
        }
    }

    /// <summary>The highest score first; on equal scores the leftmost pair.</summary>
    private sealed class HighestScoreFirst : IComparer<(float Score, int Left)>
    {
        public static readonly HighestScoreFirst Instance = new();

        public int Compare((float Score, int Left) x, (float Score, int Left) y) =>
            x.Score > y.Score ? -1 : x.Score < y.Score ? 1 : x.Left.CompareTo(y.Left);
    }
}
