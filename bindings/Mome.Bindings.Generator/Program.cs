using System.Text;
using Mome.Bindings.Generator;

// Mome.Bindings.Generator [--check] <header.h> <outDir>
//   writes the generated files into outDir (only those whose content changed) and deletes
//   *.g.cs files there that the generator no longer produces; with --check, writes nothing
//   and exits 1 if outDir differs from what would be written.
bool check = args.Contains("--check");
string[] paths = args.Where(arg => arg != "--check").ToArray();
if (paths.Length != 2)
{
    Console.Error.WriteLine("usage: Mome.Bindings.Generator [--check] <header.h> <outDir>");
    return 1;
}
string header = paths[0];
string outDir = paths[1];

try
{
    IReadOnlyDictionary<string, string> files = BindingGenerator.Generate(header);
    return check ? Check(files, header, outDir) : Write(files, outDir);
}
catch (BindingException e)
{
    Console.Error.WriteLine($"error: {e.Message}");
    return 1;
}
catch (Exception e) when (e is IOException or UnauthorizedAccessException or DllNotFoundException)
{
    Console.Error.WriteLine($"error: {e}");
    return 1;
}

static int Write(IReadOnlyDictionary<string, string> files, string outDir)
{
    Directory.CreateDirectory(outDir);
    foreach ((string name, string content) in files)
    {
        string path = Path.Combine(outDir, name);
        if (IsUpToDate(path, content))
        {
            Console.WriteLine($"unchanged {path}");
            continue;
        }
        File.WriteAllBytes(path, Encoding.UTF8.GetBytes(content));
        Console.WriteLine($"wrote     {path}");
    }
    foreach (string stale in StaleFiles(files, outDir))
    {
        File.Delete(stale);
        Console.WriteLine($"deleted   {stale}");
    }
    return 0;
}

static int Check(IReadOnlyDictionary<string, string> files, string header, string outDir)
{
    List<string> differing = files
        .Where(file => !IsUpToDate(Path.Combine(outDir, file.Key), file.Value))
        .Select(file => Path.Combine(outDir, file.Key))
        .Concat(StaleFiles(files, outDir))
        .ToList();
    if (differing.Count == 0)
    {
        Console.WriteLine($"{outDir} is up to date with {header}.");
        return 0;
    }
    Console.Error.WriteLine($"{outDir} is out of date with {header}; run build.ps1 regen-bindings. Differing files:");
    differing.ForEach(path => Console.Error.WriteLine($"  {path}"));
    return 1;
}

// Byte comparison, so a file that only differs in line ends or a BOM counts as changed.
static bool IsUpToDate(string path, string content) =>
    File.Exists(path) && File.ReadAllBytes(path).AsSpan().SequenceEqual(Encoding.UTF8.GetBytes(content));

static IEnumerable<string> StaleFiles(IReadOnlyDictionary<string, string> files, string outDir) =>
    Directory.Exists(outDir)
        ? Directory.GetFiles(outDir, "*.g.cs").Where(path => !files.ContainsKey(Path.GetFileName(path))).Order(StringComparer.Ordinal)
        : [];
