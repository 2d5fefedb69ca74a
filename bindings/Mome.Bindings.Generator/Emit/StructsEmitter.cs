using Mome.Bindings.Generator.Model;

namespace Mome.Bindings.Generator.Emit;

internal static class StructsEmitter
{
    public static string Emit(HeaderModel model)
    {
        var code = new CodeWriter("System.Runtime.InteropServices");
        for (int s = 0; s < model.Structs.Count; s++)
        {
            StructDecl decl = model.Structs[s];
            if (s > 0)
            {
                code.Line();
            }
            code.Summary(decl.Doc);
            code.Line("[StructLayout(LayoutKind.Sequential)]");
            code.Open($"internal unsafe struct {Names.Pascal(decl.Name)}");
            for (int i = 0; i < decl.Fields.Count; i++)
            {
                FieldDecl field = decl.Fields[i];
                string what = $"{decl.Name}.{field.Name}";
                code.BeginMember(i, field.Doc);
                if (field.Type is ArrayType array)
                {
                    (string element, long length) = TypeMapper.FixedBuffer(array, what);
                    code.Line($"public fixed {element} {Names.Pascal(field.Name)}[{length}]; /* {array.Spelling} */");
                }
                else
                {
                    code.Line($"public {TypeMapper.Declare(field.Type, what)} {Names.Pascal(field.Name)};");
                }
            }
            code.Close();
        }
        return code.ToString();
    }
}
