using Mome.Bindings.Generator.Clang;
using Mome.Bindings.Generator.Emit;
using Mome.Bindings.Generator.Model;

namespace Mome.Bindings.Generator;

/// <summary>Generates the C# interop layer (namespace Mome.Interop) for mome.h.</summary>
public static class BindingGenerator
{
    /// <summary>
    /// Parses <paramref name="headerPath"/> with libclang and returns the generated files by
    /// name (e.g. "NativeMethods.g.cs"), ordered by name; contents use '\n' line ends.
    /// </summary>
    /// <exception cref="BindingException">The header does not parse or has a construct that cannot be bound.</exception>
    public static IReadOnlyDictionary<string, string> Generate(string headerPath)
    {
        HeaderModel model = HeaderReader.Read(Path.GetFullPath(headerPath));
        return new SortedDictionary<string, string>(StringComparer.Ordinal)
        {
            ["Constants.g.cs"] = ConstantsEmitter.Emit(model),
            ["Enums.g.cs"] = EnumsEmitter.Emit(model),
            ["Structs.g.cs"] = StructsEmitter.Emit(model),
            ["Layout.g.cs"] = LayoutEmitter.Emit(model),
            ["NativeMethods.g.cs"] = NativeMethodsEmitter.Emit(model),
        };
    }
}
