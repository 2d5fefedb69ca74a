using System.Runtime.InteropServices;
using Mome.Bindings.Generator;
using Mome.Interop;

namespace Mome.Tests;

/// <summary>The committed interop layer is exactly what the generator makes from mome.h
/// today, and its structs have the layout clang computed for the C structs.</summary>
public sealed class BindingsTests
{
    [Test]
    public void CommittedBindingsAreFresh()
    {
        var generated = BindingGenerator.Generate(TestPaths.Header);
        var committed = Directory.GetFiles(TestPaths.GeneratedBindings, "*.g.cs")
            .ToDictionary(p => Path.GetFileName(p), File.ReadAllText);
        Assert.That(committed.Keys, Is.EquivalentTo(generated.Keys),
            "bindings/generated has other files than the generator makes: run `dotnet pwsh build.ps1 regen-bindings`");
        foreach (var (name, text) in generated)
            Assert.That(committed[name], Is.EqualTo(text),
                $"bindings/generated/{name} is stale: mome.h changed without regeneration; run `dotnet pwsh build.ps1 regen-bindings`");
    }

    [Test]
    public void StructLayoutsMatchClang()
    {
        var assembly = typeof(MomeBatch).Assembly;
        var sizes = MomeLayout.Sizes();
        Assert.That(sizes, Is.Not.Empty);
        foreach (var (name, size) in sizes)
        {
            var type = assembly.GetType("Mome.Interop." + name);
            Assert.That(type, Is.Not.Null, name);
            Assert.That(Marshal.SizeOf(type!), Is.EqualTo(size), $"sizeof({name})");
        }
        foreach (var (name, field, offset) in MomeLayout.Offsets())
            Assert.That((int)Marshal.OffsetOf(assembly.GetType("Mome.Interop." + name)!, field), Is.EqualTo(offset), $"{name}.{field}");
    }
}
