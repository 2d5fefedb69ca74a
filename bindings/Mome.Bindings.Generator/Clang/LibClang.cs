using System.Runtime.InteropServices;

namespace Mome.Bindings.Generator.Clang;

// The subset of the clang-c API the header reader uses. The library comes from the
// libclang.runtime.* NuGet package, whose native asset is named libclang.
internal static unsafe partial class LibClang
{
    private const string Library = "libclang";

    [LibraryImport(Library)]
    public static partial byte* clang_getCString(CXString text);

    [LibraryImport(Library)]
    public static partial void clang_disposeString(CXString text);

    [LibraryImport(Library)]
    public static partial IntPtr clang_createIndex(int excludeDeclarationsFromPch, int displayDiagnostics);

    [LibraryImport(Library)]
    public static partial void clang_disposeIndex(IntPtr index);

    [LibraryImport(Library)]
    public static partial CXErrorCode clang_parseTranslationUnit2(
        IntPtr index, byte* sourceFilename, byte** commandLineArgs, int numCommandLineArgs,
        IntPtr unsavedFiles, uint numUnsavedFiles, CXTranslationUnitFlags options, IntPtr* translationUnit);

    [LibraryImport(Library)]
    public static partial void clang_disposeTranslationUnit(IntPtr translationUnit);

    [LibraryImport(Library)]
    public static partial uint clang_getNumDiagnostics(IntPtr translationUnit);

    [LibraryImport(Library)]
    public static partial IntPtr clang_getDiagnostic(IntPtr translationUnit, uint index);

    [LibraryImport(Library)]
    public static partial void clang_disposeDiagnostic(IntPtr diagnostic);

    [LibraryImport(Library)]
    public static partial CXDiagnosticSeverity clang_getDiagnosticSeverity(IntPtr diagnostic);

    [LibraryImport(Library)]
    public static partial CXString clang_formatDiagnostic(IntPtr diagnostic, uint options);

    [LibraryImport(Library)]
    public static partial uint clang_defaultDiagnosticDisplayOptions();

    [LibraryImport(Library)]
    public static partial CXCursor clang_getTranslationUnitCursor(IntPtr translationUnit);

    [LibraryImport(Library)]
    public static partial uint clang_visitChildren(
        CXCursor parent, delegate* unmanaged<CXCursor, CXCursor, IntPtr, CXChildVisitResult> visitor, IntPtr clientData);

    [LibraryImport(Library)]
    public static partial CXString clang_getCursorSpelling(CXCursor cursor);

    [LibraryImport(Library)]
    public static partial CXString clang_getCursorKindSpelling(CXCursorKind kind);

    [LibraryImport(Library)]
    public static partial CXSourceLocation clang_getCursorLocation(CXCursor cursor);

    [LibraryImport(Library)]
    public static partial CXSourceRange clang_getCursorExtent(CXCursor cursor);

    [LibraryImport(Library)]
    public static partial int clang_Location_isFromMainFile(CXSourceLocation location);

    [LibraryImport(Library)]
    public static partial CXSourceLocation clang_getRangeStart(CXSourceRange range);

    [LibraryImport(Library)]
    public static partial CXSourceLocation clang_getRangeEnd(CXSourceRange range);

    [LibraryImport(Library)]
    public static partial void clang_getExpansionLocation(
        CXSourceLocation location, IntPtr* file, uint* line, uint* column, uint* offset);

    [LibraryImport(Library)]
    public static partial int clang_Cursor_isNull(CXCursor cursor);

    [LibraryImport(Library)]
    public static partial uint clang_isCursorDefinition(CXCursor cursor);

    [LibraryImport(Library)]
    public static partial CXCursor clang_getCursorDefinition(CXCursor cursor);

    [LibraryImport(Library)]
    public static partial uint clang_Cursor_isBitField(CXCursor cursor);

    [LibraryImport(Library)]
    public static partial long clang_Cursor_getOffsetOfField(CXCursor cursor);

    [LibraryImport(Library)]
    public static partial uint clang_Cursor_isMacroFunctionLike(CXCursor cursor);

    [LibraryImport(Library)]
    public static partial uint clang_Cursor_isVariadic(CXCursor cursor);



    [LibraryImport(Library)]
    public static partial long clang_getEnumConstantDeclValue(CXCursor cursor);

    [LibraryImport(Library)]
    public static partial CXType clang_getEnumDeclIntegerType(CXCursor cursor);

    [LibraryImport(Library)]
    public static partial CXType clang_getTypedefDeclUnderlyingType(CXCursor cursor);

    [LibraryImport(Library)]
    public static partial int clang_Cursor_getNumArguments(CXCursor cursor);

    [LibraryImport(Library)]
    public static partial CXCursor clang_Cursor_getArgument(CXCursor cursor, uint index);

    [LibraryImport(Library)]
    public static partial CXType clang_getCursorType(CXCursor cursor);

    [LibraryImport(Library)]
    public static partial CXType clang_getCursorResultType(CXCursor cursor);

    [LibraryImport(Library)]
    public static partial CXString clang_getTypeSpelling(CXType type);

    [LibraryImport(Library)]
    public static partial CXString clang_getTypeKindSpelling(CXTypeKind kind);

    [LibraryImport(Library)]
    public static partial uint clang_isConstQualifiedType(CXType type);

    [LibraryImport(Library)]
    public static partial CXType clang_getPointeeType(CXType type);

    [LibraryImport(Library)]
    public static partial CXType clang_getCanonicalType(CXType type);

    [LibraryImport(Library)]
    public static partial CXType clang_getResultType(CXType type);

    [LibraryImport(Library)]
    public static partial int clang_getNumArgTypes(CXType type);

    [LibraryImport(Library)]
    public static partial CXType clang_getArgType(CXType type, uint index);

    [LibraryImport(Library)]
    public static partial uint clang_isFunctionTypeVariadic(CXType type);

    [LibraryImport(Library)]
    public static partial CXType clang_getArrayElementType(CXType type);

    [LibraryImport(Library)]
    public static partial long clang_getArraySize(CXType type);

    [LibraryImport(Library)]
    public static partial CXType clang_Type_getNamedType(CXType type);

    [LibraryImport(Library)]
    public static partial CXCursor clang_getTypeDeclaration(CXType type);

    [LibraryImport(Library)]
    public static partial long clang_Type_getSizeOf(CXType type);

    [LibraryImport(Library)]
    public static partial void clang_tokenize(
        IntPtr translationUnit, CXSourceRange range, CXToken** tokens, uint* numTokens);

    [LibraryImport(Library)]
    public static partial void clang_disposeTokens(IntPtr translationUnit, CXToken* tokens, uint numTokens);

    [LibraryImport(Library)]
    public static partial CXTokenKind clang_getTokenKind(CXToken token);

    [LibraryImport(Library)]
    public static partial CXString clang_getTokenSpelling(IntPtr translationUnit, CXToken token);

    [LibraryImport(Library)]
    public static partial CXSourceRange clang_getTokenExtent(IntPtr translationUnit, CXToken token);
}
