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
        var type = weightType.ToLowerInvariant() switch
        {
            "f32" => TensorType.F32,
            "f16" => TensorType.F16,
            "bf16" => TensorType.BF16,
            _ => throw new ArgumentException($"unknown weight type '{weightType}' (f32, f16 or bf16)"),
        };
        var folder = Path.Combine(Folder, "models");
        Directory.CreateDirectory(folder);
        var path = Path.Combine(folder, $"{preset}-{weightType.ToLowerInvariant()}-seed{seed}.gguf");
        if (!File.Exists(path))
        {
            io.Error.WriteLine($"creating synthetic model {path}");
            MomeModel.CreateSynthetic(SyntheticModelConfig.Preset(preset) with { WeightType = type }, path, seed);
        }
        return path;
    }
}
