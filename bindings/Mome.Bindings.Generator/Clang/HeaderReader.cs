using System.Globalization;
using System.Text.RegularExpressions;
using Mome.Bindings.Generator.Model;
using static Mome.Bindings.Generator.Clang.LibClang;

namespace Mome.Bindings.Generator.Clang;

/// <summary>
/// Walks the declarations clang found in the header itself (not in what it includes) and
/// builds the <see cref="HeaderModel"/>. Anything it cannot represent faithfully is an error
/// naming the declaration: a binding that guesses would corrupt memory at run time.
/// </summary>
internal sealed partial class HeaderReader
{
    private static readonly Dictionary<CXTypeKind, (string C, string CSharp)> Builtins = new()
    {
        [CXTypeKind.Char_S] = ("char", "byte"),
        [CXTypeKind.Char_U] = ("char", "byte"),
        [CXTypeKind.SChar] = ("signed char", "sbyte"),
        [CXTypeKind.UChar] = ("unsigned char", "byte"),
        [CXTypeKind.Short] = ("short", "short"),
        [CXTypeKind.UShort] = ("unsigned short", "ushort"),
        [CXTypeKind.Int] = ("int", "int"),
        [CXTypeKind.UInt] = ("unsigned int", "uint"),
        [CXTypeKind.LongLong] = ("long long", "long"),
        [CXTypeKind.ULongLong] = ("unsigned long long", "ulong"),
        [CXTypeKind.Float] = ("float", "float"),
        [CXTypeKind.Double] = ("double", "double"),
    };

    private readonly TranslationUnit _unit;
    private readonly string _headerName;
    private readonly DocComments _docs;
    private readonly List<ConstantDecl> _constants = [];
    private readonly List<EnumDecl> _enums = [];
    private readonly List<StructDecl> _structs = [];
    private readonly List<FunctionDecl> _functions = [];
    private readonly HashSet<string> _functionNames = [];

    private HeaderReader(TranslationUnit unit, string headerPath)
    {
        _unit = unit;
        _headerName = Path.GetFileName(headerPath);
        _docs = new DocComments(unit.Tokens(unit.Cursor));
    }

    public static HeaderModel Read(string headerPath)
    {
        if (!File.Exists(headerPath))
        {
            throw new BindingException($"Header {headerPath} does not exist.");
        }

        string[] arguments = ["-x", "c", "-std=c11", "-ffreestanding", "-isystem", CompilerIncludes.Find()];
        using TranslationUnit unit = TranslationUnit.Parse(headerPath, arguments);
        var reader = new HeaderReader(unit, headerPath);
        foreach (CXCursor cursor in unit.Cursor.Children())
        {
            if (cursor.IsFromMainFile())
            {
                reader.Visit(cursor);
            }
        }
        return new HeaderModel(reader._constants, reader._enums, reader._structs, reader._functions);
    }

    private void Visit(CXCursor cursor)
    {
        switch (cursor.Kind)
        {
            case CXCursorKind.MacroDefinition:
                ReadMacro(cursor);
                break;
            case CXCursorKind.MacroExpansion:
            case CXCursorKind.InclusionDirective:
                break;
            case CXCursorKind.EnumDecl:
                _enums.Add(ReadEnum(cursor));
                break;
            case CXCursorKind.StructDecl:
                // A declaration without a body introduces an opaque handle type, bound as IntPtr where used.
                if (clang_isCursorDefinition(cursor) != 0)
                {
                    _structs.Add(ReadStruct(cursor));
                }
                break;
            case CXCursorKind.TypedefDecl:
                // Typedefs produce no code of their own, but one that cannot be bound is rejected
                // here even if no function uses it yet.
                Resolve(clang_getTypedefDeclUnderlyingType(cursor), cursor, $"typedef {cursor.Spelling()}");
                break;
            case CXCursorKind.FunctionDecl:
                if (_functionNames.Add(cursor.Spelling()))
                {
                    _functions.Add(ReadFunction(cursor));
                }
                break;
            default:
                throw Unsupported(cursor, $"{cursor.Spelling()}: a {cursor.KindSpelling()} cannot be bound.");
        }
    }

    // Only `#define NAME <integer literal>` becomes a constant; include guards, MOME_API and
    // function-like macros have no C# counterpart.
    private void ReadMacro(CXCursor cursor)
    {
        if (clang_Cursor_isMacroFunctionLike(cursor) != 0)
        {
            return;
        }
        List<Token> tokens = _unit.Tokens(cursor).Where(token => token.Kind != CXTokenKind.Comment).ToList();
        if (tokens.Count == 2 && tokens[1].Kind == CXTokenKind.Literal
            && TryParseInteger(tokens[1].Spelling, out ulong value, out bool isUnsigned))
        {
            _constants.Add(new ConstantDecl(cursor.Spelling(), value, isUnsigned, _docs.For(cursor)));
        }
    }

    private static bool TryParseInteger(string literal, out ulong value, out bool isUnsigned)
    {
        value = 0;
        isUnsigned = false;
        Match match = IntegerLiteral().Match(literal);
        if (!match.Success)
        {
            return false;
        }
        isUnsigned = match.Groups["suffix"].Value.Contains('u', StringComparison.OrdinalIgnoreCase);
        string digits = match.Groups["digits"].Value;
        try
        {
            value = digits switch
            {
                ['0', 'x' or 'X', .. var hex] => Convert.ToUInt64(hex, 16),
                ['0', 'b' or 'B', .. var binary] => Convert.ToUInt64(binary, 2),
                ['0', _, ..] => Convert.ToUInt64(digits, 8),
                _ => ulong.Parse(digits, NumberStyles.None, CultureInfo.InvariantCulture),
            };
            return true;
        }
        catch (OverflowException)
        {
            return false;
        }
    }

    [GeneratedRegex("^(?<digits>0[xX][0-9a-fA-F]+|0[bB][01]+|0[0-7]*|[1-9][0-9]*)(?<suffix>[uU]?(ll|LL|l|L)?|(ll|LL|l|L)[uU])$")]
    private static partial Regex IntegerLiteral();

    private EnumDecl ReadEnum(CXCursor cursor)
    {
        string name = RequireTag(cursor, "enum");
        if (clang_Type_getSizeOf(clang_getEnumDeclIntegerType(cursor)) != sizeof(int))
        {
            throw Unsupported(cursor, $"enum {name} is not int-sized, so it cannot be bound as an int enum.");
        }

        var members = new List<EnumMember>();
        foreach (CXCursor child in cursor.Children())
        {
            if (child.Kind != CXCursorKind.EnumConstantDecl)
            {
                throw Unsupported(child, $"enum {name} contains a {child.KindSpelling()}, which cannot be bound.");
            }
            long value = clang_getEnumConstantDeclValue(child);
            if (value is < int.MinValue or > int.MaxValue)
            {
                throw Unsupported(child, $"{child.Spelling()} = {value} does not fit the int that enum {name} is bound as.");
            }
            members.Add(new EnumMember(child.Spelling(), value, _docs.For(child)));
        }
        return new EnumDecl(name, members, _docs.For(cursor));
    }

    private StructDecl ReadStruct(CXCursor cursor)
    {
        string name = RequireTag(cursor, "struct");
        var fields = new List<FieldDecl>();
        foreach (CXCursor child in cursor.Children())
        {
            string field = $"{name}.{child.Spelling()}";
            if (child.Kind != CXCursorKind.FieldDecl)
            {
                throw Unsupported(child, $"struct {name} contains a {child.KindSpelling()}, which cannot be bound; "
                    + "declare nested types at file scope.");
            }
            if (clang_Cursor_isBitField(child) != 0)
            {
                throw Unsupported(child, $"{field} is a bit-field, which has no portable C# layout.");
            }
            long offsetBits = clang_Cursor_getOffsetOfField(child);
            if (offsetBits < 0 || offsetBits % 8 != 0)
            {
                throw Unsupported(child, $"clang reports no byte offset for {field} ({offsetBits}).");
            }
            CType type = Resolve(clang_getCursorType(child), child, field);
            fields.Add(new FieldDecl(child.Spelling(), type, offsetBits / 8, _docs.For(child)));
        }

        long size = clang_Type_getSizeOf(clang_getCursorType(cursor));
        if (fields.Count == 0 || size <= 0)
        {
            throw Unsupported(cursor, $"struct {name} has no fields; C# would give it size 1, C size {size}.");
        }
        return new StructDecl(name, size, fields, _docs.For(cursor));
    }

    private FunctionDecl ReadFunction(CXCursor cursor)
    {
        string name = cursor.Spelling();
        if (clang_isCursorDefinition(cursor) != 0)
        {
            throw Unsupported(cursor, $"{name} has a body in the header; only exported functions can be imported.");
        }
        if (clang_getCursorType(cursor).Kind == CXTypeKind.FunctionNoProto)
        {
            throw Unsupported(cursor, $"{name} has no prototype; declare an empty parameter list as (void).");
        }
        if (clang_Cursor_isVariadic(cursor) != 0)
        {
            throw Unsupported(cursor, $"{name} is variadic, which [LibraryImport] cannot call.");
        }

        CType returnType = Resolve(clang_getCursorResultType(cursor), cursor, $"the return type of {name}");
        var parameters = new List<ParameterDecl>();
        int count = clang_Cursor_getNumArguments(cursor);
        for (uint i = 0; i < count; i++)
        {
            CXCursor parameter = clang_Cursor_getArgument(cursor, i);
            string parameterName = parameter.Spelling();
            if (parameterName.Length == 0)
            {
                throw Unsupported(cursor, $"parameter {i + 1} of {name} has no name; the binding keeps C parameter names.");
            }
            CType type = Resolve(clang_getCursorType(parameter), parameter, $"parameter {parameterName} of {name}");
            parameters.Add(new ParameterDecl(parameterName, type));
        }
        return new FunctionDecl(name, returnType, parameters, _docs.For(cursor));
    }

    /// <param name="declaration">Where the type is written: error messages point there, and an array length is read from its tokens.</param>
    /// <param name="what">The declaration in words, for error messages.</param>
    private CType Resolve(CXType type, CXCursor declaration, string what)
    {
        bool isConst = clang_isConstQualifiedType(type) != 0;
        switch (type.Kind)
        {
            case CXTypeKind.Elaborated:
                CType named = Resolve(clang_Type_getNamedType(type), declaration, what);
                return isConst ? named with { IsConst = true } : named;

            case CXTypeKind.Typedef:
                return ResolveTypedef(clang_getTypeDeclaration(type), isConst, what);

            case CXTypeKind.Void:
                return new VoidType(isConst);

            case CXTypeKind.Pointer:
                CXType pointee = clang_getCanonicalType(clang_getPointeeType(type));
                if (pointee.Kind is CXTypeKind.FunctionProto or CXTypeKind.FunctionNoProto)
                {
                    return ResolveFunctionPointer(pointee, declaration, what, isConst);
                }
                return new PointerType(Resolve(clang_getPointeeType(type), declaration, what), isConst);

            case CXTypeKind.Record:
                return ResolveRecord(clang_getTypeDeclaration(type), isConst, what);

            case CXTypeKind.Enum:
                CXCursor enumDecl = clang_getTypeDeclaration(type);
                RequireInHeader(enumDecl, what);
                string tag = RequireTag(enumDecl, "enum");
                return new EnumType(tag, "enum " + tag, isConst);

            case CXTypeKind.ConstantArray:
                CType element = Resolve(clang_getArrayElementType(type), declaration, what);
                if (element is ArrayType)
                {
                    throw Unsupported(declaration, $"{what} is a multi-dimensional array, which cannot be bound.");
                }
                return new ArrayType(element, clang_getArraySize(type), ArrayLengthSpelling(declaration));

            case CXTypeKind.FunctionProto or CXTypeKind.FunctionNoProto:
                throw Unsupported(declaration, $"{what} uses a function type ({type.Spelling()}); only pointers to functions "
                    + "(callbacks) can be bound.");

            case CXTypeKind.Long or CXTypeKind.ULong:
                throw Unsupported(declaration, $"{what} uses {type.Spelling()}, whose size differs between Linux and "
                    + "Windows; use int64_t/uint64_t.");

            case CXTypeKind.Bool:
                throw Unsupported(declaration, $"{what} uses _Bool, which is not blittable; use uint8_t.");

            default:
                if (Builtins.TryGetValue(type.Kind, out var builtin))
                {
                    return new PrimitiveType(builtin.C, builtin.CSharp, isConst);
                }
                throw Unsupported(declaration, $"{what} has type {type.Spelling()} ({type.KindSpelling()}), "
                    + "which has no C# mapping.");
        }
    }

    private CType ResolveTypedef(CXCursor typedef, bool isConst, string what)
    {
        string name = typedef.Spelling();
        if (Primitives.FromTypedef(name, isConst) is { } primitive)
        {
            return primitive;
        }

        CType target = Resolve(clang_getTypedefDeclUnderlyingType(typedef), typedef, $"typedef {name} (in {what})");
        isConst |= target.IsConst;
        return target switch
        {
            EnumType e => e with { WrittenName = name, IsConst = isConst },
            StructType s => s with { WrittenName = name, IsConst = isConst },
            OpaqueType o => o with { WrittenName = name, IsConst = isConst },
            PrimitiveType p => p with { CName = name, IsConst = isConst },
            FunctionPointerType f => f with { WrittenName = name, IsConst = isConst },
            _ => throw Unsupported(typedef, $"{what}: typedef {name} stands for {target.Spelling}; only typedefs of "
                + "structs, enums, fixed-size integers and function pointers can be bound."),
        };
    }

    // A callback: every parameter and the result must be bindable themselves; C# calls it as an
    // unmanaged function pointer with the platform's C convention.
    private CType ResolveFunctionPointer(CXType function, CXCursor declaration, string what, bool isConst)
    {
        if (function.Kind == CXTypeKind.FunctionNoProto)
        {
            throw Unsupported(declaration, $"{what} points to a function without a prototype; declare (void) for no parameters.");
        }
        if (clang_isFunctionTypeVariadic(function) != 0)
        {
            throw Unsupported(declaration, $"{what} points to a variadic function, which C# cannot call back.");
        }
        CType result = Resolve(clang_getResultType(function), declaration, $"the result of {what}");
        var parameters = new List<CType>();
        int count = clang_getNumArgTypes(function);
        for (uint i = 0; i < count; i++)
        {
            parameters.Add(Resolve(clang_getArgType(function, i), declaration, $"parameter {i + 1} of {what}"));
        }
        return new FunctionPointerType(result, parameters, "", isConst);
    }

    private CType ResolveRecord(CXCursor record, bool isConst, string what)
    {
        if (record.Kind == CXCursorKind.UnionDecl)
        {
            throw Unsupported(record, $"{what} uses union {record.Spelling()}; unions cannot be bound.");
        }
        string tag = RequireTag(record, "struct");
        CXCursor definition = clang_getCursorDefinition(record);
        if (definition.IsNull())
        {
            return new OpaqueType(tag, "struct " + tag, isConst);
        }
        RequireInHeader(definition, what);
        return new StructType(tag, "struct " + tag, isConst);
    }

    // The generator only emits types defined in the header, so using any other would not compile.
    private void RequireInHeader(CXCursor definition, string what)
    {
        if (!definition.IsFromMainFile())
        {
            throw Unsupported(definition, $"{what} uses {definition.Spelling()}, which is defined outside {_headerName}.");
        }
    }

    private string RequireTag(CXCursor tagDecl, string keyword)
    {
        string tag = tagDecl.Spelling();
        if (!CIdentifier().IsMatch(tag))
        {
            throw Unsupported(tagDecl, $"an anonymous {keyword} ({tag}) cannot be bound; give it a tag, "
                + $"as in `typedef {keyword} mome_x {{ ... }} mome_x;`.");
        }
        return tag;
    }

    [GeneratedRegex("^[A-Za-z_][A-Za-z0-9_]*$")]
    private static partial Regex CIdentifier();

    // The tokens between the brackets, so `char name[MOME_DEVICE_NAME_SIZE]` keeps its macro name.
    private string ArrayLengthSpelling(CXCursor declaration)
    {
        List<string> tokens = _unit.Tokens(declaration).Select(token => token.Spelling).ToList();
        int open = tokens.IndexOf("[");
        int close = tokens.IndexOf("]", open);
        return string.Join(' ', tokens.Skip(open + 1).Take(close - open - 1));
    }

    private BindingException Unsupported(CXCursor at, string message) =>
        new($"{_headerName}:{at.StartLine()}: {message}");
}
