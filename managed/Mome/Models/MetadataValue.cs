using Mome.Gguf;
using Mome.Interop;
using Mome.Native;

namespace Mome;

/// <summary>
/// A GGUF metadata value, read on demand from the native model that owns it (using it after the
/// model was disposed throws <see cref="ObjectDisposedException"/>), or held by the managed GGUF
/// reader where the native core is absent.
/// </summary>
public sealed unsafe class MetadataValue
{
    private readonly SafeModelHandle? _owner;
    private readonly IntPtr _value; // const mome_value*, valid while _owner is open
    private readonly GgufValue? _managed;

    internal MetadataValue(GgufValue managed)
    {
        _managed = managed;
        Type = managed.Type;
        ElementType = managed.ElementType;
        Count = managed.Type == MetadataType.String ? (ulong)managed.AsStringBytes().Length : managed.Count;
    }

    internal MetadataValue(SafeModelHandle owner, IntPtr value)
    {
        _owner = owner;
        _value = value;
        var info = Call(v =>
        {
            MomeValueInfo i;
            Status.Check(NativeMethods.mome_value_get_info(v, &i));
            return i;
        });
        Type = (MetadataType)(int)info.Type;
        ElementType = (MetadataType)(int)info.ElementType;
        Count = info.Count;
    }

    public MetadataType Type { get; }

    /// <summary>For arrays, the type of every element; otherwise equal to <see cref="Type"/>.</summary>
    public MetadataType ElementType { get; }

    /// <summary>Elements of an array, bytes of a string, 1 for other scalars.</summary>
    public ulong Count { get; }

    public bool IsArray => Type == MetadataType.Array;

    /// <summary>Any integer or bool (element <paramref name="index"/> of an array).</summary>
    public long GetInt64(ulong index = 0) => _managed?.AsInt64(index) ?? Call(v =>
    {
        long x;
        Status.Check(NativeMethods.mome_value_get_i64(v, index, &x));
        return x;
    });

    public ulong GetUInt64(ulong index = 0) => _managed?.AsUInt64(index) ?? Call(v =>
    {
        ulong x;
        Status.Check(NativeMethods.mome_value_get_u64(v, index, &x));
        return x;
    });

    /// <summary>Any float or integer.</summary>
    public double GetDouble(ulong index = 0) => _managed?.AsDouble(index) ?? Call(v =>
    {
        double x;
        Status.Check(NativeMethods.mome_value_get_f64(v, index, &x));
        return x;
    });

    public bool GetBool(ulong index = 0) => _managed?.AsBool(index) ?? Call(v =>
    {
        byte x;
        Status.Check(NativeMethods.mome_value_get_bool(v, index, &x));
        return x != 0;
    });

    public string GetString(ulong index = 0) => _managed?.AsString(index) ?? Call(v =>
    {
        byte* s;
        ulong length;
        Status.Check(NativeMethods.mome_value_get_string(v, index, &s, &length));
        return Status.Utf8(s, length);
    });

    /// <summary>Element <paramref name="index"/> of an array of arrays.</summary>
    public MetadataValue GetArray(ulong index) => _managed is not null ? new(_managed.AsArray(index)) : new(_owner!, Call(v =>
    {
        IntPtr child;
        Status.Check(NativeMethods.mome_value_get_element(v, index, &child));
        return child;
    }));

    /// <summary>All elements of an array of strings.</summary>
    public string[] GetStrings()
    {
        var result = new string[checked((int)Count)];
        for (var i = 0; i < result.Length; i++) result[i] = GetString((ulong)i);
        return result;
    }

    /// <summary>The value as a JSON-friendly object: long, ulong, double, bool, string, or
    /// an array of those (arrays longer than <paramref name="maxElements"/> are cut).</summary>
    public object ToPlainObject(int maxElements = int.MaxValue)
    {
        if (!IsArray) return Scalar(Type, 0);
        var n = (int)Math.Min(Count, (ulong)maxElements);
        var items = new object[n];
        for (var i = 0; i < n; i++)
            items[i] = ElementType == MetadataType.Array ? GetArray((ulong)i).ToPlainObject(maxElements) : Scalar(ElementType, (ulong)i);
        return items;
    }

    /// <summary>A short human-readable rendering (arrays summarised).</summary>
    public override string ToString()
    {
        if (!IsArray) return Type == MetadataType.String ? GetString() : Convert.ToString(Scalar(Type, 0), System.Globalization.CultureInfo.InvariantCulture)!;
        const int shown = 4;
        var head = Enumerable.Range(0, (int)Math.Min(Count, shown)).Select(i =>
            ElementType == MetadataType.Array ? $"[{GetArray((ulong)i).Count} items]"
            : ElementType == MetadataType.String ? "\"" + GetString((ulong)i) + "\""
            : Convert.ToString(Scalar(ElementType, (ulong)i), System.Globalization.CultureInfo.InvariantCulture));
        return $"[{ElementType.ToString().ToLowerInvariant()} x {Count}] {string.Join(", ", head)}{(Count > shown ? ", ..." : "")}";
    }

    private object Scalar(MetadataType type, ulong index) => type switch
    {
        MetadataType.String => GetString(index),
        MetadataType.Bool => GetBool(index),
        MetadataType.Float32 or MetadataType.Float64 => GetDouble(index),
        MetadataType.UInt64 => GetUInt64(index),
        _ => GetInt64(index),
    };

    private T Call<T>(Func<IntPtr, T> call) => _owner!.Use(_ => call(_value));
}
