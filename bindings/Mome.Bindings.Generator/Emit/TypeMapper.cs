using Mome.Bindings.Generator.Model;

namespace Mome.Bindings.Generator.Emit;

/// <summary>
/// C types to blittable C# types, so [LibraryImport] generates no marshalling code and structs
/// keep the C layout. Pointers to opaque structs become IntPtr (handles the caller never
/// dereferences); callbacks become unmanaged function pointers; every other pointer stays a
/// typed pointer. Wherever a pointer, callback or array is involved the C type is kept in a
/// comment, since IntPtr and byte* alone lose it.
/// </summary>
internal static class TypeMapper
{
    // The element types C# allows in a fixed-size buffer.
    private static readonly HashSet<string> FixedBufferElements = new(StringComparer.Ordinal)
    {
        "byte", "sbyte", "short", "ushort", "int", "uint", "long", "ulong", "float", "double",
    };

    /// <summary>The C# type of a field, parameter or return value, with the C type in a comment where it says more.</summary>
    public static string Declare(CType type, string what)
    {
        string csharp = Map(type, what);
        return type is PointerType or FunctionPointerType ? $"{csharp} /* {type.Spelling} */" : csharp;
    }

    /// <summary>A C array field as a C# fixed-size buffer.</summary>
    public static (string Element, long Length) FixedBuffer(ArrayType array, string what)
    {
        string element = Map(array.Element, what);
        if (array.Element is not PrimitiveType || !FixedBufferElements.Contains(element))
        {
            throw new BindingException($"{what} is an array of {array.Element.Spelling}; only arrays of "
                + "fixed-size numbers can be bound, as C# fixed buffers.");
        }
        return (element, array.Length);
    }

    private static string Map(CType type, string what) => type switch
    {
        PrimitiveType primitive => primitive.CSharpName,
        VoidType => "void",
        EnumType e => Names.Pascal(e.Tag),
        StructType s => Names.Pascal(s.Tag),
        PointerType { Pointee: OpaqueType } => "IntPtr",
        PointerType pointer => Map(pointer.Pointee, what) + "*",
        FunctionPointerType function => "delegate* unmanaged[Cdecl]<"
            + string.Join(", ", function.Parameters.Select(p => Map(p, what)).Append(Map(function.Return, what))) + ">",
        OpaqueType opaque => throw new BindingException(
            $"{what} uses the opaque struct {opaque.Spelling} by value; only pointers to it can be bound."),
        ArrayType array => throw new BindingException(
            $"{what} is the array {array.Spelling}; arrays are bound only as struct fields."),
        _ => throw new BindingException($"{what}: no C# mapping for {type.Spelling}."),
    };
}
