using Mome.Bindings.Generator.Model;

namespace Mome.Bindings.Generator.Emit;

/// <summary>
/// Emits clang's sizeof and offsetof for every struct, under the C# names, so a test can
/// check the managed layout (Unsafe.SizeOf, Marshal.OffsetOf) against what the C compiler does.
/// </summary>
internal static class LayoutEmitter
{
    public static string Emit(HeaderModel model)
    {
        var code = new CodeWriter("System.Collections.Generic");
        code.Summary("Sizes and field offsets in bytes, as clang lays out the structs of mome.h; names are the C# names.");
        code.Open("internal static class MomeLayout");

        code.Line("public static IReadOnlyList<(string Name, int Size)> Sizes() =>");
        code.Line("[");
        foreach (StructDecl decl in model.Structs)
        {
            code.Line($"    (\"{Names.Pascal(decl.Name)}\", {decl.Size}),");
        }
        code.Line("];");
        code.Line();

        code.Line("public static IReadOnlyList<(string Struct, string Field, int Offset)> Offsets() =>");
        code.Line("[");
        foreach (StructDecl decl in model.Structs)
        {
            foreach (FieldDecl field in decl.Fields)
            {
                code.Line($"    (\"{Names.Pascal(decl.Name)}\", \"{Names.Pascal(field.Name)}\", {field.Offset}),");
            }
        }
        code.Line("];");

        code.Close();
        return code.ToString();
    }
}
