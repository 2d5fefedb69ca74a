using System.Buffers.Binary;
using System.Text;

namespace Mome.Gguf;

/// <summary>One tensor's header entry; <see cref="Offset"/> is relative to the data section.</summary>
internal sealed record GgufTensor(string Name, uint Type, long[] Shape, long ElementCount, ulong Offset, ulong SizeBytes);

/// <summary>
/// A GGUF file (versions 2 and 3) read by the managed side, for hosts without the native core.
/// The header is validated against the file's size before anything is allocated, with the
/// native reader's rules and messages; tensor data stays in a read-only memory mapping.
/// </summary>
internal sealed unsafe class GgufFile : IDisposable
{
    private const int MaxArrayDepth = 8;
    private const ulong MaxNameLength = 1 << 16;
    private static readonly UTF8Encoding StrictUtf8 = new(false, true);

    private readonly MappedFile _file;
    private readonly byte* _data;
    private readonly Dictionary<string, int> _tensorIndex = new(StringComparer.Ordinal);
    private ulong _pos;

    private GgufFile(string path)
    {
        _file = new MappedFile(path);
        Path = path;
        FileSize = _file.Size;
        _data = _file.Data;
    }

    public string Path { get; }
    public uint Version { get; private set; }
    public uint Alignment { get; private set; } = 32;
    public ulong FileSize { get; }
    public ulong DataOffset { get; private set; }

    /// <summary>Metadata in file order.</summary>
    public OrderedDictionary<string, GgufValue> Metadata { get; } = new(StringComparer.Ordinal);

    public List<GgufTensor> Tensors { get; } = [];

    /// <summary>Opens and validates <paramref name="path"/>; every failure is a MomeException whose message starts with the path.</summary>
    public static GgufFile Open(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var file = new GgufFile(path);
        try
        {
            file.Parse();
            return file;
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    public GgufValue? Find(string key) => Metadata.TryGetValue(key, out var v) ? v : null;

    public GgufTensor? FindTensor(string name) => _tensorIndex.TryGetValue(name, out var i) ? Tensors[i] : null;

    /// <summary>A tensor's bytes in the mapping (valid while the file is open).</summary>
    public ReadOnlySpan<byte> TensorData(GgufTensor t) => new(_data + DataOffset + t.Offset, checked((int)t.SizeBytes));

    /// <summary>A tensor's first byte in the mapping, for tensors of 2 GiB and more (valid while the file is open).</summary>
    public byte* TensorPointer(GgufTensor t) => _data + DataOffset + t.Offset;

    public void Dispose() => _file.Dispose();

    private ulong Remaining => FileSize - _pos;

    private MomeException Error(string what) => new(MomeErrorCode.FormatError, $"{Path}: {what} (at byte {_pos} of {FileSize})");

    private ReadOnlySpan<byte> Take(ulong n, string what)
    {
        if (n > Remaining) throw Error($"file is truncated: {what} needs {n} bytes, {Remaining} remain");
        var span = new ReadOnlySpan<byte>(_data + _pos, checked((int)n));
        _pos += n;
        return span;
    }

    private uint ReadU32(string what) => BinaryPrimitives.ReadUInt32LittleEndian(Take(4, what));
    private ulong ReadU64(string what) => BinaryPrimitives.ReadUInt64LittleEndian(Take(8, what));

    private string ReadName(string what, ulong index)
    {
        var length = ReadU64(what);
        if (length > Remaining) throw Error($"{what} {index} of {length} bytes runs past the end of the file");
        if (length == 0 || length > MaxNameLength) throw Error($"{what} {index} is {length} bytes long (1 to {MaxNameLength} allowed)");
        var bytes = Take(length, what);
        if (bytes.Contains((byte)0)) throw Error($"{what} {index} contains a NUL byte");
        try
        {
            return StrictUtf8.GetString(bytes);
        }
        catch (DecoderFallbackException)
        {
            throw Error($"{what} {index} is not valid UTF-8");
        }
    }

    private byte[] ReadString(string what)
    {
        var length = ReadU64(what);
        if (length > Remaining) throw Error($"{what} of {length} bytes runs past the end of the file");
        return Take(length, what).ToArray();
    }

    private static bool ValidType(uint t) => t <= (uint)MetadataType.Float64;

    private static ulong MinEncodedSize(MetadataType t) =>
        t == MetadataType.String ? 8UL : t == MetadataType.Array ? 12UL : (ulong)GgufValue.ScalarSize(t);

    private GgufValue ReadValue(MetadataType type, string key) => type switch
    {
        MetadataType.String => WithString(new GgufValue { Type = type, ElementType = type }, ReadString($"string value of '{key}'")),
        MetadataType.Array => ReadArray(0, key),
        _ => new GgufValue { Type = type, ElementType = type, Raw = Take((ulong)GgufValue.ScalarSize(type), $"value of '{key}'").ToArray() },
    };

    private static GgufValue WithString(GgufValue v, byte[] s)
    {
        v.Strings.Add(s);
        return v;
    }

    private GgufValue ReadArray(int depth, string key)
    {
        if (depth >= MaxArrayDepth) throw Error($"'{key}' nests arrays more than {MaxArrayDepth} deep");
        var element = ReadU32("array element type");
        if (!ValidType(element)) throw Error($"array '{key}' has unknown element type {element}");
        var elementType = (MetadataType)element;
        var count = ReadU64("array length");
        if (count > Remaining / MinEncodedSize(elementType))
            throw Error($"array '{key}' claims {count} elements of type {GgufValue.TypeName(elementType)}, more than the file can hold");
        var raw = elementType is MetadataType.String or MetadataType.Array
            ? [] : Take(count * (ulong)GgufValue.ScalarSize(elementType), "array data").ToArray();
        var value = new GgufValue { Type = MetadataType.Array, ElementType = elementType, Count = count, Raw = raw };
        for (ulong i = 0; elementType == MetadataType.String && i < count; i++) value.Strings.Add(ReadString("array string"));
        for (ulong i = 0; elementType == MetadataType.Array && i < count; i++) value.Arrays.Add(ReadArray(depth + 1, key));
        return value;
    }

    private void Parse()
    {
        if (FileSize < 4) throw Error("file is too short to be GGUF");
        if (!new ReadOnlySpan<byte>(_data, 4).SequenceEqual("GGUF"u8))
            throw new MomeException(MomeErrorCode.FormatError, $"{Path}: not a GGUF file (the first bytes are not the magic 'GGUF')");
        Take(4, "magic");
        Version = ReadU32("version");
        if (Version is not (2 or 3))
        {
            var swapped = BinaryPrimitives.ReverseEndianness(Version);
            var hint = swapped is 2 or 3 ? " (a big-endian file; only little-endian is supported)" : "";
            throw new MomeException(MomeErrorCode.Unsupported, $"{Path}: GGUF version {Version} is not supported (versions 2 and 3 are){hint}");
        }
        var tensorCount = ReadU64("tensor count");
        var kvCount = ReadU64("metadata count");
        if (kvCount > Remaining / 13) throw Error($"metadata count {kvCount} is more than the file can hold");
        if (tensorCount > Remaining / 32) throw Error($"tensor count {tensorCount} is more than the file can hold");

        for (ulong i = 0; i < kvCount; i++)
        {
            var key = ReadName("metadata key", i);
            var type = ReadU32("metadata type");
            if (!ValidType(type)) throw Error($"metadata '{key}' has unknown type {type}");
            if (Metadata.ContainsKey(key)) throw Error($"metadata key '{key}' appears twice");
            Metadata.Add(key, ReadValue((MetadataType)type, key));
        }

        if (Find("general.alignment") is { } a)
        {
            if (a.Type != MetadataType.UInt32) throw Error("general.alignment must be a uint32");
            var align = (uint)a.AsInt64();
            if (align == 0 || (align & (align - 1)) != 0) throw Error($"general.alignment {align} is not a power of two");
            Alignment = align;
        }

        for (ulong i = 0; i < tensorCount; i++) ReadTensorInfo(i);

        DataOffset = (_pos + Alignment - 1) / Alignment * Alignment;
        if (Tensors.Count > 0 && DataOffset > FileSize)
            throw new MomeException(MomeErrorCode.FormatError,
                $"{Path}: general.alignment {Alignment} puts the tensor data at byte {DataOffset}, past the end of the file ({FileSize} bytes)");
        foreach (var t in Tensors)
        {
            var fits = DataOffset <= FileSize && t.Offset <= FileSize - DataOffset && t.SizeBytes <= FileSize - DataOffset - t.Offset;
            if (!fits)
                throw new MomeException(MomeErrorCode.FormatError,
                    $"{Path}: tensor '{t.Name}' ({t.SizeBytes} bytes at data offset {t.Offset}) extends past the end of the file ({FileSize} bytes)");
        }
    }

    private void ReadTensorInfo(ulong index)
    {
        var name = ReadName("tensor name", index);
        var dims = ReadU32("tensor dimension count");
        if (dims is 0 or > 4) throw Error($"tensor '{name}' has {dims} dimensions (1 to 4 allowed)");
        var shape = new long[dims];
        long n = 1;
        for (var d = 0; d < dims; d++)
        {
            var ne = ReadU64("tensor dimension");
            if (ne > long.MaxValue || (ne != 0 && (ulong)n > (ulong)long.MaxValue / ne))
                throw Error($"tensor '{name}' has dimensions whose product overflows");
            shape[d] = (long)ne;
            n *= (long)ne;
        }
        var type = ReadU32("tensor type");
        if (!GgufTensorTypes.TryGet(type, out var traits)) throw Error($"tensor '{name}' has unknown tensor type {type}");
        if (shape[0] % traits.BlockSize != 0)
            throw Error($"tensor '{name}' of type {traits.Name} has a row of {shape[0]} elements, not a multiple of its block size {traits.BlockSize}");
        var blocks = (ulong)(n / traits.BlockSize);
        if (blocks > ulong.MaxValue / (ulong)traits.TypeSize) throw Error($"tensor '{name}' is too large");
        var offset = ReadU64("tensor offset");
        if (offset % Alignment != 0) throw Error($"tensor '{name}' offset {offset} is not a multiple of the alignment {Alignment}");
        if (_tensorIndex.ContainsKey(name)) throw Error($"tensor '{name}' appears twice");
        _tensorIndex.Add(name, Tensors.Count);
        Tensors.Add(new GgufTensor(name, type, shape, n, offset, blocks * (ulong)traits.TypeSize));
    }
}
