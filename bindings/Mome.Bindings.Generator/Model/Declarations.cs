namespace Mome.Bindings.Generator.Model;

// Every list is in the order the header declares things, which is the order of the output.

internal sealed record HeaderModel(
    IReadOnlyList<ConstantDecl> Constants,
    IReadOnlyList<EnumDecl> Enums,
    IReadOnlyList<StructDecl> Structs,
    IReadOnlyList<FunctionDecl> Functions);

/// <summary>An object-like macro whose whole body is one integer literal (a <c>u</c> suffix makes it unsigned).</summary>
internal sealed record ConstantDecl(string Name, ulong Value, bool IsUnsigned, string? Doc);

internal sealed record EnumDecl(string Name, IReadOnlyList<EnumMember> Members, string? Doc);

internal sealed record EnumMember(string Name, long Value, string? Doc);

/// <summary>A struct with a body; <see cref="Size"/> is clang's sizeof in bytes.</summary>
internal sealed record StructDecl(string Name, long Size, IReadOnlyList<FieldDecl> Fields, string? Doc);

/// <summary>A struct member; <see cref="Offset"/> is clang's offsetof in bytes.</summary>
internal sealed record FieldDecl(string Name, CType Type, long Offset, string? Doc);

internal sealed record FunctionDecl(string Name, CType ReturnType, IReadOnlyList<ParameterDecl> Parameters, string? Doc);

internal sealed record ParameterDecl(string Name, CType Type);
