using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace Mome;

/// <summary>
/// What memory tuning needs besides the bank to continue exactly where it stopped: the
/// position (epoch, fact), the step count and the AdamW moments of every expert, key row and
/// W_q it touched. Saved next to the bank as "&lt;bank&gt;.state", after the bank, both
/// crash-safely (temporary file, flush to disk, rename); it names the bank file by its
/// SHA-256, so a state whose bank write did not follow it is recognised and not used.
/// </summary>
/// <remarks>
/// Layout: "MOMETUNE", u32 version, u32 header length, header (UTF-8 JSON), then three
/// sparse sections of (u32 row length, u64 row count, rows of i64 index + moments), for
/// experts (m_A, v_A, m_B, v_B), key rows (m, v) and W_q (m, v; one row), and last the
/// SHA-256 of everything before it. Every count is checked against the file's length and
/// the bank's shape before anything is allocated.
/// </remarks>
internal sealed class TuningCheckpoint
{
    private static readonly byte[] Magic = "MOMETUNE"u8.ToArray();
    private const uint Version = 1;
    private const int MaxHeaderBytes = 1 << 20;

    public sealed record Header(int Epoch, int Position, long Step, double EpochLoss, int EpochMemorised, double ElapsedSeconds,
        string FactsHash, string BankHash);

    public required Header Position { get; init; }
    public required Dictionary<long, float[][]> Experts { get; init; } // m_A, v_A, m_B, v_B
    public required Dictionary<long, float[][]> KeyRows { get; init; } // m, v
    public float[][]? Wq { get; init; }                                // m, v

    public static string StatePath(string bankPath) => bankPath + ".state";

    public static string HashFile(string path)
    {
        using var stream = File.OpenRead(path);
        return Convert.ToHexString(SHA256.HashData(stream));
    }

    public static string HashFacts(IEnumerable<int[]> tokenLists)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (var tokens in tokenLists)
        {
            hash.AppendData(BitConverter.GetBytes(tokens.Length));
            foreach (var t in tokens) hash.AppendData(BitConverter.GetBytes(t));
        }
        return Convert.ToHexString(hash.GetHashAndReset());
    }

    public void Save(string path)
    {
        using var memory = new MemoryStream();
        using (var w = new BinaryWriter(memory, Encoding.UTF8, leaveOpen: true))
        {
            w.Write(Magic);
            w.Write(Version);
            var header = JsonSerializer.SerializeToUtf8Bytes(Position);
            w.Write((uint)header.Length);
            w.Write(header);
            WriteSection(w, Experts);
            WriteSection(w, KeyRows);
            WriteSection(w, Wq is null ? [] : new Dictionary<long, float[][]> { [0] = Wq });
        }
        memory.Write(SHA256.HashData(memory.GetBuffer().AsSpan(0, (int)memory.Length)));
        var temporary = path + ".tmp";
        using (var file = new FileStream(temporary, FileMode.Create, FileAccess.Write, FileShare.None))
        {
            memory.Position = 0;
            memory.CopyTo(file);
            file.Flush(flushToDisk: true);
        }
        if (File.Exists(path)) File.Move(path, PreviousPath(path), overwrite: true);
        File.Move(temporary, path, overwrite: true);
    }

    /// <summary>Where saving a state keeps the one it replaces.</summary>
    public static string PreviousPath(string statePath) => statePath + ".prev";

    private static void WriteSection(BinaryWriter w, Dictionary<long, float[][]> rows)
    {
        var length = rows.Count == 0 ? 0 : rows.First().Value.Sum(v => v.Length);
        w.Write((uint)length);
        w.Write((ulong)rows.Count);
        foreach (var (index, moments) in rows.OrderBy(r => r.Key))
        {
            w.Write(index);
            foreach (var m in moments)
                foreach (var x in m)
                    w.Write(x);
        }
    }

    /// <summary>Reads a state file for a bank of this shape: <paramref name="expertLength"/>
    /// = rank x n_embd, <paramref name="keyRowLength"/> and <paramref name="wqLength"/> as the
    /// router's. Throws InvalidDataException naming the file and what is wrong.</summary>
    public static TuningCheckpoint Load(string path, long experts, int expertLength, long keyRows, int keyRowLength, int wqLength)
    {
        var bytes = File.ReadAllBytes(path);
        InvalidDataException Bad(string what) => new($"tuning state {path}: {what}; delete it to restart the optimiser from the bank as saved");
        if (bytes.Length < Magic.Length + 8 + 32 || !bytes.AsSpan(0, Magic.Length).SequenceEqual(Magic)) throw Bad("not a Mome tuning state file");
        var body = bytes.AsSpan(0, bytes.Length - 32);
        if (!SHA256.HashData(body).AsSpan().SequenceEqual(bytes.AsSpan(bytes.Length - 32))) throw Bad("checksum mismatch (the file is damaged)");
        using var r = new BinaryReader(new MemoryStream(bytes, 0, body.Length));
        r.ReadBytes(Magic.Length);
        var version = r.ReadUInt32();
        if (version != Version) throw Bad($"version {version} (this Mome reads {Version})");
        var headerLength = r.ReadUInt32();
        if (headerLength > MaxHeaderBytes || headerLength > body.Length - r.BaseStream.Position) throw Bad($"header length {headerLength} is past the end");
        Header header;
        try
        {
            header = JsonSerializer.Deserialize<Header>(r.ReadBytes((int)headerLength)) ?? throw Bad("empty header");
        }
        catch (JsonException e)
        {
            throw Bad($"header is not valid JSON ({e.Message})");
        }
        if (header.Epoch < 0 || header.Position < 0 || header.Step < 0) throw Bad("negative position in the header");
        var checkpoint = new TuningCheckpoint
        {
            Position = header,
            Experts = ReadSection(r, body.Length, 4, expertLength, experts, "expert", Bad),
            KeyRows = ReadSection(r, body.Length, 2, keyRowLength, keyRows, "key row", Bad),
            Wq = ReadSection(r, body.Length, 2, wqLength, 1, "W_q", Bad).GetValueOrDefault(0),
        };
        if (r.BaseStream.Position != body.Length) throw Bad("bytes left over after the last section");
        return checkpoint;
    }

    private static Dictionary<long, float[][]> ReadSection(BinaryReader r, long end, int moments, int rowLength, long rows, string what,
        Func<string, InvalidDataException> bad)
    {
        if (end - r.BaseStream.Position < 12) throw bad($"the file ends before its {what} section");
        var length = r.ReadUInt32();
        var count = r.ReadUInt64();
        if (count == 0) return [];
        if (length != (ulong)moments * (ulong)rowLength)
            throw bad($"{what} moments hold {length} values a row; this bank needs {moments * rowLength}");
        var rowBytes = 8 + 4UL * length;
        if (count > (ulong)rows || count > (ulong)(end - r.BaseStream.Position) / rowBytes)
            throw bad($"{count} {what} rows do not fit the file or the bank ({rows})");
        var result = new Dictionary<long, float[][]>((int)count);
        for (ulong i = 0; i < count; i++)
        {
            var index = r.ReadInt64();
            if (index < 0 || index >= rows || result.ContainsKey(index)) throw bad($"{what} {index} is outside 0..{rows - 1} or repeated");
            var m = new float[moments][];
            for (var j = 0; j < moments; j++)
            {
                m[j] = new float[rowLength];
                for (var x = 0; x < rowLength; x++) m[j][x] = r.ReadSingle();
            }
            result[index] = m;
        }
        return result;
    }
}
