using System.Text;

namespace Mome.Tests;

/// <summary>
/// Assembles GGUF files byte by byte, independently of Mome's writer, so tests can make
/// both valid files and every kind of broken one.
/// </summary>
internal sealed class GgufBuilder
{
    private readonly List<byte[]> _kv = [];
    private readonly List<(string Name, uint Type, ulong[] Dims, ulong? Offset, byte[] Data)> _tensors = [];

    public uint Version { get; set; } = 3;
    public ulong? TensorCountOverride { get; set; }
    public ulong? KvCountOverride { get; set; }

    public GgufBuilder Raw(byte[] entry)
    {
        _kv.Add(entry);
        return this;
    }

    public GgufBuilder U32(string key, uint value) => Raw(Entry(key, 4, w => w.Write(value)));
    public GgufBuilder U64(string key, ulong value) => Raw(Entry(key, 10, w => w.Write(value)));
    public GgufBuilder F32(string key, float value) => Raw(Entry(key, 6, w => w.Write(value)));
    public GgufBuilder Str(string key, string value) => Raw(Entry(key, 8, w => WriteString(w, value)));

    public GgufBuilder Bool(string key, bool value) => Raw(Entry(key, 7, w => w.Write(value ? (byte)1 : (byte)0)));

    public GgufBuilder StrArray(string key, IReadOnlyList<string> values) => Raw(Entry(key, 9, w =>
    {
        w.Write(8u);
        w.Write((ulong)values.Count);
        foreach (var v in values) WriteString(w, v);
    }));

    public GgufBuilder F32Array(string key, IReadOnlyList<float> values) => Raw(Entry(key, 9, w =>
    {
        w.Write(6u);
        w.Write((ulong)values.Count);
        foreach (var v in values) w.Write(v);
    }));

    public GgufBuilder I32Array(string key, IReadOnlyList<int> values) => Raw(Entry(key, 9, w =>
    {
        w.Write(5u);
        w.Write((ulong)values.Count);
        foreach (var v in values) w.Write(v);
    }));

    public GgufBuilder Tensor(string name, uint type, ulong[] dims, byte[] data, ulong? offset = null)
    {
        _tensors.Add((name, type, dims, offset, data));
        return this;
    }

    public GgufBuilder Drop(string name)
    {
        _tensors.RemoveAll(t => t.Name == name);
        return this;
    }

    public GgufBuilder Reshape(string name, params ulong[] dims)
    {
        var i = _tensors.FindIndex(t => t.Name == name);
        _tensors[i] = (name, 0, dims, null, new byte[4 * dims.Aggregate(1UL, (a, b) => a * b)]);
        return this;
    }

    /// <summary>A F32 tensor of zeros with the given ggml dimensions.</summary>
    public GgufBuilder F32Tensor(string name, params ulong[] dims) =>
        Tensor(name, 0, dims, new byte[4 * dims.Aggregate(1UL, (a, b) => a * b)]);

    public static byte[] Entry(string key, uint type, Action<BinaryWriter> value)
    {
        using var ms = new MemoryStream();
        using var w = new BinaryWriter(ms);
        WriteString(w, key);
        w.Write(type);
        value(w);
        w.Flush();
        return ms.ToArray();
    }

    public static void WriteString(BinaryWriter w, string s)
    {
        var bytes = Encoding.UTF8.GetBytes(s);
        w.Write((ulong)bytes.Length);
        w.Write(bytes);
    }

    public byte[] Build()
    {
        using var ms = new MemoryStream();
        using var w = new BinaryWriter(ms);
        w.Write("GGUF"u8);
        w.Write(Version);
        w.Write(TensorCountOverride ?? (ulong)_tensors.Count);
        w.Write(KvCountOverride ?? (ulong)_kv.Count);
        foreach (var e in _kv) w.Write(e);
        ulong next = 0;
        var offsets = new List<ulong>();
        foreach (var t in _tensors)
        {
            WriteString(w, t.Name);
            w.Write((uint)t.Dims.Length);
            foreach (var d in t.Dims) w.Write(d);
            w.Write(t.Type);
            var offset = t.Offset ?? next;
            w.Write(offset);
            offsets.Add(offset);
            next = Align((ulong)Math.Max(next, offset) + (ulong)t.Data.Length);
        }
        Pad(w);
        var dataStart = ms.Position;
        for (var i = 0; i < _tensors.Count; i++)
        {
            if (_tensors[i].Offset is not null) continue; // deliberately misplaced: no data
            ms.Position = dataStart + (long)offsets[i];
            w.Write(_tensors[i].Data);
            Pad(w);
        }
        w.Flush();
        return ms.ToArray();
    }

    /// <summary>A complete one-layer Llama model (vocabulary size only, zero weights).</summary>
    public static GgufBuilder TinyLlama(int embd = 8, int ff = 16, int vocab = 32, int heads = 2, ulong context = 64)
    {
        var b = new GgufBuilder().Str("general.architecture", "llama");
        b = context <= uint.MaxValue ? b.U32("llama.context_length", (uint)context) : b.U64("llama.context_length", context);
        b
            .U32("llama.embedding_length", (uint)embd)
            .U32("llama.block_count", 1)
            .U32("llama.feed_forward_length", (uint)ff)
            .U32("llama.attention.head_count", (uint)heads)
            .F32("llama.attention.layer_norm_rms_epsilon", 1e-5f)
            .U32("llama.vocab_size", (uint)vocab)
            .Str("tokenizer.ggml.model", "no_vocab");
        var e = (ulong)embd;
        b.F32Tensor("token_embd.weight", e, (ulong)vocab).F32Tensor("output_norm.weight", e)
            .F32Tensor("blk.0.attn_norm.weight", e).F32Tensor("blk.0.attn_q.weight", e, e)
            .F32Tensor("blk.0.attn_k.weight", e, e).F32Tensor("blk.0.attn_v.weight", e, e)
            .F32Tensor("blk.0.attn_output.weight", e, e).F32Tensor("blk.0.ffn_norm.weight", e)
            .F32Tensor("blk.0.ffn_gate.weight", e, (ulong)ff).F32Tensor("blk.0.ffn_up.weight", e, (ulong)ff)
            .F32Tensor("blk.0.ffn_down.weight", (ulong)ff, e);
        return b;
    }

    private static ulong Align(ulong x) => (x + 31) / 32 * 32;

    private static void Pad(BinaryWriter w)
    {
        while (w.BaseStream.Position % 32 != 0) w.Write((byte)0);
    }
}
