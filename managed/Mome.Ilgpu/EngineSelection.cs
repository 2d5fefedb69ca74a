using Mome.Engines;

namespace Mome.Ilgpu;

/// <summary>A model and a session over it, from whichever engine was chosen; disposing it frees both.</summary>
public sealed class EngineSession(IDisposable model, IInferenceSession session, ModelConfig config, string engineName) : IDisposable
{
    public IInferenceSession Session { get; } = session;
    public ModelConfig Config { get; } = config;

    /// <summary>Which engine runs, for people ("native", "ILGPU Cpu (CPU accelerator)").</summary>
    public string EngineName { get; } = engineName;

    public void Dispose()
    {
        Session.Dispose();
        model.Dispose();
    }
}

/// <summary>
/// Picks the engine: an explicit choice, else MOME_ENGINE (native|ilgpu), else the native core
/// when it loads and the ILGPU engine when it does not (with a one-line notice saying why).
/// </summary>
public static class EngineSelection
{
    public const string EnvironmentVariable = "MOME_ENGINE";

    public static EngineKind Resolve(EngineKind? requested, out string? notice)
    {
        notice = null;
        if (requested is { } r) return r;
        var fromEnvironment = Environment.GetEnvironmentVariable(EnvironmentVariable);
        if (!string.IsNullOrWhiteSpace(fromEnvironment))
            return Parse(fromEnvironment, EnvironmentVariable);
        if (MomeNativeLibrary.TryEnsureLoaded(out var reason)) return EngineKind.Native;
        var firstLine = reason?.Split('\n', 2)[0].Trim() ?? "unknown reason";
        notice = $"mome: the native library did not load ({firstLine}); running on the ILGPU engine (CPU accelerator)";
        return EngineKind.Ilgpu;
    }

    /// <summary>"native" or "ilgpu" (any case); ArgumentException naming <paramref name="source"/> otherwise.</summary>
    public static EngineKind Parse(string text, string source) => text.Trim().ToLowerInvariant() switch
    {
        "native" => EngineKind.Native,
        "ilgpu" => EngineKind.Ilgpu,
        _ => throw new ArgumentException($"{source}: '{text}' is not an engine (native or ilgpu)"),
    };

    /// <summary>Opens <paramref name="path"/> and a session on <paramref name="engine"/>.</summary>
    public static EngineSession Open(EngineKind engine, string path, SessionOptions options, IlgpuAccelerator accelerator = IlgpuAccelerator.Cpu)
    {
        if (engine == EngineKind.Native)
        {
            var model = MomeModel.Open(path);
            try
            {
                return new EngineSession(model, new MomeSession(model, options), model.Config, "native");
            }
            catch
            {
                model.Dispose();
                throw;
            }
        }
        var ilgpu = IlgpuModel.Open(path, accelerator);
        try
        {
            return new EngineSession(ilgpu, new IlgpuSession(ilgpu, options), ilgpu.Config, IlgpuDevice.Describe(accelerator));
        }
        catch
        {
            ilgpu.Dispose();
            throw;
        }
    }
}
