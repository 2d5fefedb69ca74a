namespace Mome;

/// <summary>
/// Byte-level BPE over one pre-tokenized word, as llama.cpp's <c>llm_tokenizer_bpe_session</c>:
/// the word's characters are merged pairwise, lowest merge rank first (leftmost on ties),
/// until no adjacent pair has a merge; each resulting piece is a token.
/// </summary>
/// <remarks>
/// Pieces are tracked by an id: a token's id for token texts, ids past the vocabulary for
/// texts that merges mention but that are no token, so that merging never builds strings.
/// </remarks>
internal sealed class BpeMerger
{
    private readonly GgufVocabulary _vocab;
    private readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> _tokens;
    private readonly Dictionary<long, int> _rankByPair = new(PairComparer.Instance); // (left piece, right piece) -> merge rank
    private readonly int[] _mergedPiece;                    // merge rank -> piece it produces
    private readonly int[] _pieceOfChar;                    // mapped character (< 512) -> piece, or -1

    public BpeMerger(GgufVocabulary vocab)
    {
        _vocab = vocab;
        _tokens = vocab.Ids.GetAlternateLookup<ReadOnlySpan<char>>();
        var pieces = new Dictionary<string, int>(vocab.Ids, StringComparer.Ordinal);
        var pieceLookup = pieces.GetAlternateLookup<ReadOnlySpan<char>>();
        int Piece(ReadOnlySpan<char> text)
        {
            if (pieceLookup.TryGetValue(text, out var id)) return id;
            id = pieces.Count;
            pieceLookup.TryAdd(text, id);
            return id;
        }

        var merges = vocab.Merges;
        _mergedPiece = new int[merges.Length];
        Span<char> joined = stackalloc char[256];
        for (var rank = 0; rank < merges.Length; rank++)
        {
            var merge = merges[rank].AsSpan();
            // As llama.cpp: split at the first space after the first character.
            var space = merge.Length > 1 ? merge[1..].IndexOf(' ') : -1;
            if (space < 0) continue;
            var left = merge[..(space + 1)];
            var right = merge[(space + 2)..];
            var leftId = Piece(left);
            var rightId = Piece(right);
            if (!_rankByPair.TryAdd(Key(leftId, rightId), rank)) continue; // a repeated merge keeps its first rank
            var total = left.Length + right.Length;
            var buffer = total <= joined.Length ? joined[..total] : new char[total];
            left.CopyTo(buffer);
            right.CopyTo(buffer[left.Length..]);
            _mergedPiece[rank] = Piece(buffer);
        }

        _pieceOfChar = new int[512];
        for (var c = 0; c < _pieceOfChar.Length; c++)
        {
            var ch = (char)c;
            _pieceOfChar[c] = pieceLookup.TryGetValue(new ReadOnlySpan<char>(in ch), out var id) ? id : -1;
        }
    }

    /// <summary>Appends the tokens of one word given in byte-level form (one char per byte).</summary>
    public void Encode(string word, bool ignoreMerges, List<int> output)
    {
        // Llama 3 (ignore_merges): a word that is a token is that token, whatever the merges would do.
        if (ignoreMerges && _tokens.TryGetValue(word, out var whole))
        {
            output.Add(whole);
            return;
        }

        var n = word.Length;
        if (n == 0) return;
        var piece = new int[n];
        var length = new int[n];
        var prev = new int[n];
        var next = new int[n];
        for (var i = 0; i < n; i++)
        {
            piece[i] = word[i] < _pieceOfChar.Length ? _pieceOfChar[word[i]] : -1;
            length[i] = 1;
            prev[i] = i - 1;
            next[i] = i + 1 < n ? i + 1 : -1;
        }

        var queue = new PriorityQueue<(int Left, int Right, int LeftPiece, int RightPiece), (int Rank, int Left)>();
        void TryAdd(int left, int right)
        {
            if (left < 0 || right < 0 || piece[left] < 0 || piece[right] < 0) return;
            if (_rankByPair.TryGetValue(Key(piece[left], piece[right]), out var rank))
                queue.Enqueue((left, right, piece[left], piece[right]), (rank, left));
        }
        for (var i = 1; i < n; i++) TryAdd(i - 1, i);

        while (queue.TryDequeue(out var pair, out var priority))
        {
            var (left, right) = (pair.Left, pair.Right);
            // Skip pairs that an earlier merge changed.
            if (length[left] == 0 || length[right] == 0 || piece[left] != pair.LeftPiece || piece[right] != pair.RightPiece
                || next[left] != right)
                continue;
            piece[left] = _mergedPiece[priority.Rank];
            length[left] += length[right];
            length[right] = 0;
            next[left] = next[right];
            if (next[right] >= 0) prev[next[right]] = left;
            TryAdd(prev[left], left);
            TryAdd(left, next[left]);
        }

        for (var i = 0; i >= 0; i = next[i])
        {
            if (piece[i] >= 0 && piece[i] < _vocab.Count)
            {
                output.Add(piece[i]);
                continue;
            }
            // Not a token: llama.cpp falls back to the single-character tokens of its bytes
            // (only ASCII characters can be single-byte tokens) and drops the rest.
            for (var c = i; c < i + length[i]; c++)
                if (word[c] < 0x80 && _tokens.TryGetValue(word.AsSpan(c, 1), out var t))
                    output.Add(t);
        }
    }

    private static long Key(int left, int right) => ((long)left << 32) | (uint)right;

    /// <summary>long's own hash (the XOR of its halves) would put most pairs in few buckets.</summary>
    private sealed class PairComparer : IEqualityComparer<long>
    {
        public static readonly PairComparer Instance = new();

        public bool Equals(long x, long y) => x == y;

        public int GetHashCode(long key) => (int)(((ulong)key * 0x9E3779B97F4A7C15UL) >> 32);
    }
}
