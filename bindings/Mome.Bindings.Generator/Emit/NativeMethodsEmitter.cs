using Mome.Bindings.Generator.Model;

namespace Mome.Bindings.Generator.Emit;

internal static class NativeMethodsEmitter
{
    public static string Emit(HeaderModel model)
    {
        var code = new CodeWriter("System.Runtime.InteropServices");
        code.Open("internal static unsafe partial class NativeMethods");
        code.Line("internal const string LibraryName = \"mome\";");
        foreach (FunctionDecl function in model.Functions)
        {
            code.Line();
            code.Summary(function.Doc);
            string returnType = TypeMapper.Declare(function.ReturnType, $"the return type of {function.Name}");
            IEnumerable<string> parameters = function.Parameters.Select(parameter =>
                TypeMapper.Declare(parameter.Type, $"parameter {parameter.Name} of {function.Name}")
                + " " + Names.Verbatim(parameter.Name));
            code.Line($"[LibraryImport(LibraryName, EntryPoint = \"{function.Name}\")]");
            code.Line($"internal static partial {returnType} {Names.Verbatim(function.Name)}({string.Join(", ", parameters)});");
        }
        code.Close();
        return code.ToString();
    }
}
