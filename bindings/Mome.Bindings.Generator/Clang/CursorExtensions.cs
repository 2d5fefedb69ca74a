using System.Runtime.InteropServices;
using static Mome.Bindings.Generator.Clang.LibClang;

namespace Mome.Bindings.Generator.Clang;

internal static unsafe class CursorExtensions
{
    public static string TakeString(CXString text)
    {
        try
        {
            byte* chars = clang_getCString(text);
            return chars == null ? "" : Marshal.PtrToStringUTF8((IntPtr)chars) ?? "";
        }
        finally
        {
            clang_disposeString(text);
        }
    }

    public static string Spelling(this CXCursor cursor) => TakeString(clang_getCursorSpelling(cursor));

    public static string KindSpelling(this CXCursor cursor) => TakeString(clang_getCursorKindSpelling(cursor.Kind));

    public static bool IsNull(this CXCursor cursor) => clang_Cursor_isNull(cursor) != 0;

    public static bool IsFromMainFile(this CXCursor cursor) =>
        clang_Location_isFromMainFile(clang_getCursorLocation(cursor)) != 0;

    public static int StartLine(this CXCursor cursor) => Line(clang_getRangeStart(clang_getCursorExtent(cursor)));

    // Macro expansions (MOME_API in front of every function) report the line they are written on.
    public static int Line(CXSourceLocation location)
    {
        uint line;
        clang_getExpansionLocation(location, null, &line, null, null);
        return (int)line;
    }

    public static IReadOnlyList<CXCursor> Children(this CXCursor parent)
    {
        var children = new List<CXCursor>();
        GCHandle handle = GCHandle.Alloc(children);
        try
        {
            clang_visitChildren(parent, &CollectChild, GCHandle.ToIntPtr(handle));
        }
        finally
        {
            handle.Free();
        }
        return children;
    }

    [UnmanagedCallersOnly]
    private static CXChildVisitResult CollectChild(CXCursor cursor, CXCursor parent, IntPtr clientData)
    {
        ((List<CXCursor>)GCHandle.FromIntPtr(clientData).Target!).Add(cursor);
        return CXChildVisitResult.Continue;
    }

    public static string Spelling(this CXType type) => TakeString(clang_getTypeSpelling(type));

    public static string KindSpelling(this CXType type) => TakeString(clang_getTypeKindSpelling(type.Kind));
}
