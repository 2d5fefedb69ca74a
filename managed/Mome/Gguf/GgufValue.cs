using System.Buffers.Binary;

namespace Mome.Gguf;

/// <summary>A GGUF metadata value: a scalar, a string, or an array of either (or of arrays),
/// with the typed reads and error messages of the native reader.</summary>
internal sealed class GgufValue
{
    public MetadataType Type { get; init; }
    public MetadataType ElementType { get; init; }

    /// <summary>Array elements; 1 for a scalar or a string.</summary>
    public ulong Count { get; init; } = 1;

    /// <summary>Little-endian bytes of a scalar or of a scalar array.</summary>
    public byte[] Raw { get; init; } = [];

    public List<byte[]> Strings { get; } = [];
    public List<GgufValue> Arrays { get; } = [];

    public static int ScalarSize(MetadataType t) => t switch
    {
        MetadataType.UInt8 or MetadataType.Int8 or MetadataType.Bool => 1,
        MetadataType.UInt16 or MetadataType.Int16 => 2,
        MetadataType.UInt32 or MetadataType.Int32 or MetadataType.Float32 => 4,
        MetadataType.UInt64 or MetadataType.Int64 or MetadataType.Float64 => 8,
        _ => 0,
    };

    public static string TypeName(MetadataType t) => t switch
    {
        MetadataType.UInt8 => "uint8", MetadataType.Int8 => "int8", MetadataType.UInt16 => "uint16", MetadataType.Int16 => "int16",
        MetadataType.UInt32 => "uint32", MetadataType.Int32 => "int32", MetadataType.Float32 => "float32", MetadataType.Bool => "bool",
        MetadataType.String => "string", MetadataType.Array => "array", MetadataType.UInt64 => "uint64", MetadataType.Int64 => "int64",
        MetadataType.Float64 => "float64", _ => "unknown",
    };

    public long AsInt64(ulong index = 0)
    {
        var t = ScalarType(index);
        var b = Bytes(index, t);
        return t switch
        {
            MetadataType.UInt8 => b[0], MetadataType.Int8 => (sbyte)b[0],
            MetadataType.UInt16 => BinaryPrimitives.ReadUInt16LittleEndian(b), MetadataType.Int16 => BinaryPrimitives.ReadInt16LittleEndian(b),
            MetadataType.UInt32 => BinaryPrimitives.ReadUInt32LittleEndian(b), MetadataType.Int32 => BinaryPrimitives.ReadInt32LittleEndian(b),
            MetadataType.Int64 => BinaryPrimitives.ReadInt64LittleEndian(b), MetadataType.Bool => b[0] != 0 ? 1 : 0,
            MetadataType.UInt64 => BinaryPrimitives.ReadUInt64LittleEndian(b) is var u && u <= long.MaxValue
                ? (long)u : throw new MomeException(MomeErrorCode.OutOfRange, $"uint64 value {u} does not fit in int64"),
            _ => throw Mismatch(t, "an integer"),
        };
    }

    public ulong AsUInt64(ulong index = 0)
    {
        if (ScalarType(index) == MetadataType.UInt64) return BinaryPrimitives.ReadUInt64LittleEndian(Bytes(index, MetadataType.UInt64));
        var i = AsInt64(index);
        return i >= 0 ? (ulong)i : throw new MomeException(MomeErrorCode.OutOfRange, $"negative value {i} cannot be read as unsigned");
    }

    public bool AsBool(ulong index = 0)
    {
        var t = ScalarType(index);
        return t == MetadataType.Bool ? Bytes(index, t)[0] != 0 : throw Mismatch(t, "a bool");
    }

    /// <summary>Element <paramref name="index"/> of an array of arrays.</summary>
    public GgufValue AsArray(ulong index)
    {
        var t = ScalarType(index);
        return t == MetadataType.Array ? Arrays[(int)index] : throw Mismatch(t, "an array");
    }

    public double AsDouble(ulong index = 0)
    {
        var t = ScalarType(index);
        return t switch
        {
            MetadataType.Float32 => BinaryPrimitives.ReadSingleLittleEndian(Bytes(index, t)),
            MetadataType.Float64 => BinaryPrimitives.ReadDoubleLittleEndian(Bytes(index, t)),
            MetadataType.UInt64 => BinaryPrimitives.ReadUInt64LittleEndian(Bytes(index, t)),
            MetadataType.String or MetadataType.Array or MetadataType.Bool => throw Mismatch(t, "a number"),
            _ => AsInt64(index),
        };
    }

    public byte[] AsStringBytes(ulong index = 0)
    {
        var t = ScalarType(index);
        if (t != MetadataType.String) throw Mismatch(t, "a string");
        return Strings[Type == MetadataType.Array ? (int)index : 0];
    }

    public string AsString(ulong index = 0) => System.Text.Encoding.UTF8.GetString(AsStringBytes(index));

    private MetadataType ScalarType(ulong index)
    {
        if (Type == MetadataType.Array)
        {
            if (index >= Count) throw new MomeException(MomeErrorCode.OutOfRange, $"index {index} is past the end of an array of {Count}");
            return ElementType;
        }
        if (index != 0)
            throw new MomeException(MomeErrorCode.OutOfRange, $"index {index} given for a {TypeName(Type)} value that is not an array");
        return Type;
    }

    private ReadOnlySpan<byte> Bytes(ulong index, MetadataType t)
    {
        var size = ScalarSize(t);
        return Raw.AsSpan(checked((int)index * size), size);
    }

    private static MomeException Mismatch(MetadataType have, string want) =>
        new(MomeErrorCode.TypeMismatch, $"value of type {TypeName(have)} cannot be read as {want}");
}
