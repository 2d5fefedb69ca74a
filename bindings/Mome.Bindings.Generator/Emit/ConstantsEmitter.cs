using System.Globalization;
using Mome.Bindings.Generator.Model;

namespace Mome.Bindings.Generator.Emit;

internal static class ConstantsEmitter
{
    public static string Emit(HeaderModel model)
    {
        var code = new CodeWriter();
        code.Open("internal static class MomeConstants");
        for (int i = 0; i < model.Constants.Count; i++)
        {
            ConstantDecl constant = model.Constants[i];
            code.BeginMember(i, constant.Doc);
            code.Line($"public const {CSharpType(constant)} {Names.Verbatim(constant.Name)} = "
                + $"{constant.Value.ToString(CultureInfo.InvariantCulture)};");
        }
        code.Close();
        return code.ToString();
    }

    // The narrowest of int/long (uint/ulong with a u suffix) that holds the value, so the
    // constants compare with the C# types the fields and parameters get without casts.
    private static string CSharpType(ConstantDecl constant) => constant switch
    {
        { IsUnsigned: true, Value: <= uint.MaxValue } => "uint",
        { IsUnsigned: true } => "ulong",
        { Value: <= int.MaxValue } => "int",
        { Value: <= long.MaxValue } => "long",
        _ => "ulong",
    };
}
