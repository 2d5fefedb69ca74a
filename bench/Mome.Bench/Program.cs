using BenchmarkDotNet.Running;

namespace Mome.Bench;

/// <summary>BenchmarkDotNet suites: `dotnet run --project bench/Mome.Bench -c Release -- --filter *`.
/// The side-by-side comparisons with llama.cpp run through `mome bench ...`.</summary>
public static class Program
{
    public static void Main(string[] args) => BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
}
