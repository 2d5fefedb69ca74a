namespace Mome.Bindings.Generator.Model;

/// <summary>A C type as the header wrote it, reduced to the shapes the generator can bind.</summary>
internal abstract record CType(bool IsConst)
{
    /// <summary>The type in C syntax, kept in the generated code as a comment next to pointers.</summary>
    public abstract string Spelling { get; }

    protected string ConstPrefix => IsConst ? "const " : "";
}

/// <summary>A fixed-size C scalar; <see cref="CSharpName"/> is its blittable C# equivalent.</summary>
internal sealed record PrimitiveType(string CName, string CSharpName, bool IsConst) : CType(IsConst)
{
    public override string Spelling => ConstPrefix + CName;
}

internal sealed record VoidType(bool IsConst) : CType(IsConst)
{
    public override string Spelling => ConstPrefix + "void";
}

/// <summary>An enum; <see cref="Tag"/> names its declaration, <see cref="WrittenName"/> how it was referred to.</summary>
internal sealed record EnumType(string Tag, string WrittenName, bool IsConst) : CType(IsConst)
{
    public override string Spelling => ConstPrefix + WrittenName;
}

/// <summary>A struct whose body the header defines.</summary>
internal sealed record StructType(string Tag, string WrittenName, bool IsConst) : CType(IsConst)
{
    public override string Spelling => ConstPrefix + WrittenName;
}

/// <summary>A struct the header only declares: callers see it through pointers alone.</summary>
internal sealed record OpaqueType(string Tag, string WrittenName, bool IsConst) : CType(IsConst)
{
    public override string Spelling => ConstPrefix + WrittenName;
}

internal sealed record PointerType(CType Pointee, bool IsConst) : CType(IsConst)
{
    public override string Spelling => Pointee.Spelling + "*" + (IsConst ? " const" : "");
}

/// <summary>A one-dimensional array of known length; <see cref="LengthSpelling"/> keeps a macro name if one was used.</summary>
internal sealed record ArrayType(CType Element, long Length, string LengthSpelling) : CType(false)
{
    public override string Spelling => $"{Element.Spelling}[{LengthSpelling}]";
}

/// <summary>A pointer to a C function (a callback); <see cref="WrittenName"/> is its typedef's name when it has one.</summary>
internal sealed record FunctionPointerType(CType Return, IReadOnlyList<CType> Parameters, string WrittenName, bool IsConst) : CType(IsConst)
{
    public override string Spelling => WrittenName.Length > 0
        ? ConstPrefix + WrittenName
        : $"{Return.Spelling} (*)({string.Join(", ", Parameters.Select(p => p.Spelling))})";
}
