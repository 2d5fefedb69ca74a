namespace Mome.Cli;

/// <summary>Synthetic models the CLI makes on demand, cached between runs under the user's
/// local data folder (MOME_CACHE overrides it).</summary>
public static class ModelCache
{
    public static string Folder =>
        Environment.GetEnvironmentVariable("MOME_CACHE") is { Length: > 0 } custom
            ? custom
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.LocalApplicationData, Environment.SpecialFolderOption.Create), "mome");

    public static string Synthetic(string preset, string weightType, CliIo io, ulong seed = 42)
    {
        var name = weightType.ToLowerInvariant();
        if (name is "q8_0" or "q4_k_m")
            return Quantized(preset, name, io, seed);
        var type = name switch
        {
            "f32" => TensorType.F32,
            "f16" => TensorType.F16,
            "bf16" => TensorType.BF16,
            _ => throw new ArgumentException($"unknown weight type '{weightType}' (f32, f16, bf16, q8_0 or q4_k_m)"),
        };
        var path = PathOf(preset, name, seed);
        if (!File.Exists(path))
        {
            io.Error.WriteLine($"creating synthetic model {path}");
            MomeModel.CreateSynthetic(SyntheticModelConfig.Preset(preset) with { WeightType = type }, path, seed);
        }
        return path;
    }

    // The F32 model quantized: Q8_0 by Mome (the bytes llama.cpp writes), Q4_K_M by llama.cpp.
    private static string Quantized(string preset, string name, CliIo io, ulong seed)
    {
        var path = PathOf(preset, name, seed);
        if (File.Exists(path)) return path;
        var f32 = Synthetic(preset, "f32", io, seed);
        io.Error.WriteLine($"quantizing {f32} to {name}");
        if (name == "q8_0") MomeModel.Quantize(f32, path, TensorType.Q8_0);
        else Mome.Bench.LlamaQuantize.Run(f32, path, LLama.Native.LLamaFtype.MOSTLY_Q4_K_M);
        return path;
    }

    private static string PathOf(string preset, string name, ulong seed)
    {
        var folder = Path.Combine(Folder, "models");
        Directory.CreateDirectory(folder);
        return Path.Combine(folder, $"{preset}-{name}-seed{seed}.gguf");
    }
}
