using System.Runtime.InteropServices;
using System.Text;
using static Mome.Bindings.Generator.Clang.LibClang;

namespace Mome.Bindings.Generator.Clang;

internal readonly record struct Token(CXTokenKind Kind, string Spelling, int StartLine, int EndLine);

internal sealed unsafe class TranslationUnit : IDisposable
{
    private IntPtr _index;
    private IntPtr _handle;

    private TranslationUnit(IntPtr index, IntPtr handle)
    {
        _index = index;
        _handle = handle;
    }

    public CXCursor Cursor => clang_getTranslationUnitCursor(_handle);

    /// <summary>Parses <paramref name="path"/>; throws with every diagnostic when any is an error.</summary>
    public static TranslationUnit Parse(string path, IReadOnlyList<string> arguments)
    {
        IntPtr index = clang_createIndex(0, 0);
        var native = new List<IntPtr>();
        try
        {
            IntPtr nativePath = Marshal.StringToCoTaskMemUTF8(path);
            native.Add(nativePath);
            byte** argv = stackalloc byte*[arguments.Count];
            for (int i = 0; i < arguments.Count; i++)
            {
                IntPtr argument = Marshal.StringToCoTaskMemUTF8(arguments[i]);
                native.Add(argument);
                argv[i] = (byte*)argument;
            }

            IntPtr handle;
            CXErrorCode result = clang_parseTranslationUnit2(
                index, (byte*)nativePath, argv, arguments.Count, IntPtr.Zero, 0,
                CXTranslationUnitFlags.DetailedPreprocessingRecord, &handle);
            if (result != CXErrorCode.Success)
            {
                throw new BindingException($"libclang could not parse {path}: {result}.");
            }

            var unit = new TranslationUnit(index, handle);
            index = IntPtr.Zero;
            try
            {
                unit.ThrowOnErrors(path, arguments);
            }
            catch
            {
                unit.Dispose();
                throw;
            }
            return unit;
        }
        finally
        {
            native.ForEach(Marshal.FreeCoTaskMem);
            if (index != IntPtr.Zero)
            {
                clang_disposeIndex(index);
            }
        }
    }

    private void ThrowOnErrors(string path, IReadOnlyList<string> arguments)
    {
        var messages = new StringBuilder();
        bool failed = false;
        uint count = clang_getNumDiagnostics(_handle);
        for (uint i = 0; i < count; i++)
        {
            IntPtr diagnostic = clang_getDiagnostic(_handle, i);
            try
            {
                failed |= clang_getDiagnosticSeverity(diagnostic) >= CXDiagnosticSeverity.Error;
                string text = CursorExtensions.TakeString(
                    clang_formatDiagnostic(diagnostic, clang_defaultDiagnosticDisplayOptions()));
                messages.Append("\n  ").Append(text);
            }
            finally
            {
                clang_disposeDiagnostic(diagnostic);
            }
        }

        if (failed)
        {
            throw new BindingException(
                $"{path} does not parse (clang {string.Join(' ', arguments)}):{messages}");
        }
    }

    /// <summary>The tokens covered by <paramref name="cursor"/>, comments included.</summary>
    public IReadOnlyList<Token> Tokens(CXCursor cursor)
    {
        CXToken* tokens;
        uint count;
        clang_tokenize(_handle, clang_getCursorExtent(cursor), &tokens, &count);
        try
        {
            var result = new List<Token>((int)count);
            for (uint i = 0; i < count; i++)
            {
                CXSourceRange extent = clang_getTokenExtent(_handle, tokens[i]);
                result.Add(new Token(
                    clang_getTokenKind(tokens[i]),
                    CursorExtensions.TakeString(clang_getTokenSpelling(_handle, tokens[i])),
                    CursorExtensions.Line(clang_getRangeStart(extent)),
                    CursorExtensions.Line(clang_getRangeEnd(extent))));
            }
            return result;
        }
        finally
        {
            clang_disposeTokens(_handle, tokens, count);
        }
    }

    public void Dispose()
    {
        if (_handle != IntPtr.Zero)
        {
            clang_disposeTranslationUnit(_handle);
            _handle = IntPtr.Zero;
        }
        if (_index != IntPtr.Zero)
        {
            clang_disposeIndex(_index);
            _index = IntPtr.Zero;
        }
    }
}
