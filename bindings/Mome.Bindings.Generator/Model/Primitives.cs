namespace Mome.Bindings.Generator.Model;

/// <summary>
/// The C scalar types with one size on every platform Mome targets. Plain <c>long</c> and
/// <c>unsigned long</c> are absent on purpose: they are 8 bytes on Linux and 4 on Windows.
/// <c>_Bool</c> is absent because a C# <c>bool</c> is not blittable; the header uses uint8_t.
/// </summary>
internal static class Primitives
{
    // Matched by typedef name before the typedef is looked through, because int64_t and
    // friends are themselves typedefs of platform-dependent builtins such as long.
    private static readonly Dictionary<string, string> ByTypedefName = new(StringComparer.Ordinal)
    {
        ["int8_t"] = "sbyte",
        ["uint8_t"] = "byte",
        ["int16_t"] = "short",
        ["uint16_t"] = "ushort",
        ["int32_t"] = "int",
        ["uint32_t"] = "uint",
        ["int64_t"] = "long",
        ["uint64_t"] = "ulong",
        ["size_t"] = "nuint",
        ["ptrdiff_t"] = "nint",
        ["intptr_t"] = "nint",
        ["uintptr_t"] = "nuint",
    };

    public static PrimitiveType? FromTypedef(string name, bool isConst) =>
        ByTypedefName.TryGetValue(name, out string? csharp) ? new PrimitiveType(name, csharp, isConst) : null;
}
