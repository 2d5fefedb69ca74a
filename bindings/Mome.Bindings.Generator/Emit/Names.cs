using System.Text;
using System.Text.RegularExpressions;

namespace Mome.Bindings.Generator.Emit;

/// <summary>
/// C names to C# names. Types, fields and enum members become PascalCase: split at '_',
/// capitalise the first letter of each part and lower-case the rest, join without separator,
/// except that a part starting with a digit keeps its '_' (MOME_TENSOR_TYPE_Q4_0 -> Q4_0,
/// not Q40, which would read as another number; Q4_K -> Q4K). Functions, parameters and
/// constants keep their C names, escaped with '@' where they are C# keywords.
/// </summary>
internal static partial class Names
{
    private static readonly HashSet<string> Keywords = new(StringComparer.Ordinal)
    {
        "abstract", "as", "base", "bool", "break", "byte", "case", "catch", "char", "checked", "class",
        "const", "continue", "decimal", "default", "delegate", "do", "double", "else", "enum", "event",
        "explicit", "extern", "false", "finally", "fixed", "float", "for", "foreach", "goto", "if",
        "implicit", "in", "int", "interface", "internal", "is", "lock", "long", "namespace", "new", "null",
        "object", "operator", "out", "override", "params", "private", "protected", "public", "readonly",
        "ref", "return", "sbyte", "sealed", "short", "sizeof", "stackalloc", "static", "string", "struct",
        "switch", "this", "throw", "true", "try", "typeof", "uint", "ulong", "unchecked", "unsafe",
        "ushort", "using", "virtual", "void", "volatile", "while",
    };

    public static string Pascal(string cName)
    {
        var name = new StringBuilder();
        foreach (string part in cName.Split('_', StringSplitOptions.RemoveEmptyEntries))
        {
            if (name.Length > 0 && char.IsAsciiDigit(part[0]))
            {
                name.Append('_');
            }
            name.Append(char.ToUpperInvariant(part[0])).Append(part[1..].ToLowerInvariant());
        }
        return Checked(name.ToString(), cName);
    }

    /// <summary>
    /// An enum member without the prefix its enum's name implies (MOME_STATUS_ for mome_status).
    /// Every member must carry that prefix: it is the only name-derived rule that cannot
    /// collide or silently change when members are added.
    /// </summary>
    public static string EnumMember(string enumName, string memberName)
    {
        string prefix = enumName.ToUpperInvariant() + "_";
        if (!memberName.StartsWith(prefix, StringComparison.Ordinal))
        {
            throw new BindingException($"enum {enumName}: member {memberName} does not start with {prefix}.");
        }
        return Pascal(memberName[prefix.Length..]);
    }

    /// <summary>A C name used unchanged, escaped where it is a C# keyword (<c>params</c> -> <c>@params</c>).</summary>
    public static string Verbatim(string cName) => Checked(cName, cName);

    private static string Checked(string name, string cName)
    {
        if (!Identifier().IsMatch(name))
        {
            throw new BindingException($"{cName} gives the C# name '{name}', which is not an identifier.");
        }
        return Keywords.Contains(name) ? "@" + name : name;
    }

    [GeneratedRegex("^[A-Za-z_][A-Za-z0-9_]*$")]
    private static partial Regex Identifier();
}
