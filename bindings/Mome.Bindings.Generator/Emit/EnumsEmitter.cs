using Mome.Bindings.Generator.Model;

namespace Mome.Bindings.Generator.Emit;

internal static class EnumsEmitter
{
    public static string Emit(HeaderModel model)
    {
        var code = new CodeWriter();
        for (int e = 0; e < model.Enums.Count; e++)
        {
            EnumDecl decl = model.Enums[e];
            if (e > 0)
            {
                code.Line();
            }
            code.Summary(decl.Doc);
            // C lets the compiler pick the enum's integer type (unsigned int when no value is
            // negative); the reader checked it is 4 bytes and every value fits an int.
            code.Open($"internal enum {Names.Pascal(decl.Name)} : int");
            for (int i = 0; i < decl.Members.Count; i++)
            {
                EnumMember member = decl.Members[i];
                code.BeginMember(i, member.Doc);
                code.Line($"{Names.EnumMember(decl.Name, member.Name)} = {member.Value},");
            }
            code.Close();
        }
        return code.ToString();
    }
}
