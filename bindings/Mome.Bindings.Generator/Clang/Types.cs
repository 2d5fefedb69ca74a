using System.Runtime.InteropServices;

namespace Mome.Bindings.Generator.Clang;

// Layouts mirror clang-c/Index.h and CXString.h; libclang passes all of them by value.

[StructLayout(LayoutKind.Sequential)]
internal struct CXString
{
    public IntPtr Data;
    public uint PrivateFlags;
}

[StructLayout(LayoutKind.Sequential)]
internal struct CXCursor
{
    public CXCursorKind Kind;
    public int XData;
    public IntPtr Data0;
    public IntPtr Data1;
    public IntPtr Data2;
}

[StructLayout(LayoutKind.Sequential)]
internal struct CXType
{
    public CXTypeKind Kind;
    public IntPtr Data0;
    public IntPtr Data1;
}

[StructLayout(LayoutKind.Sequential)]
internal struct CXSourceLocation
{
    public IntPtr PtrData0;
    public IntPtr PtrData1;
    public uint IntData;
}

[StructLayout(LayoutKind.Sequential)]
internal struct CXSourceRange
{
    public IntPtr PtrData0;
    public IntPtr PtrData1;
    public uint BeginIntData;
    public uint EndIntData;
}

[StructLayout(LayoutKind.Sequential)]
internal struct CXToken
{
    public uint IntData0;
    public uint IntData1;
    public uint IntData2;
    public uint IntData3;
    public IntPtr PtrData;
}

internal enum CXErrorCode
{
    Success = 0,
    Failure = 1,
    Crashed = 2,
    InvalidArguments = 3,
    ASTReadError = 4,
}

internal enum CXDiagnosticSeverity
{
    Ignored = 0,
    Note = 1,
    Warning = 2,
    Error = 3,
    Fatal = 4,
}

internal enum CXChildVisitResult
{
    Break = 0,
    Continue = 1,
    Recurse = 2,
}

internal enum CXTokenKind
{
    Punctuation = 0,
    Keyword = 1,
    Identifier = 2,
    Literal = 3,
    Comment = 4,
}

[Flags]
internal enum CXTranslationUnitFlags : uint
{
    None = 0,
    DetailedPreprocessingRecord = 0x01,
}

// Only the kinds the reader dispatches on; any other kind is reported by its libclang spelling.
internal enum CXCursorKind
{
    StructDecl = 2,
    UnionDecl = 3,
    EnumDecl = 5,
    FieldDecl = 6,
    EnumConstantDecl = 7,
    FunctionDecl = 8,
    TypedefDecl = 20,
    MacroDefinition = 501,
    MacroExpansion = 502,
    InclusionDirective = 503,
}

internal enum CXTypeKind
{
    Void = 2,
    Bool = 3,
    Char_U = 4,
    UChar = 5,
    UShort = 8,
    UInt = 9,
    ULong = 10,
    ULongLong = 11,
    Char_S = 13,
    SChar = 14,
    Short = 16,
    Int = 17,
    Long = 18,
    LongLong = 19,
    Float = 21,
    Double = 22,
    Pointer = 101,
    Record = 105,
    Enum = 106,
    Typedef = 107,
    FunctionNoProto = 110,
    FunctionProto = 111,
    ConstantArray = 112,
    Elaborated = 119,
}
