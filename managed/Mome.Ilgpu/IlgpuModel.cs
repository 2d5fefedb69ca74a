using ILGPU.Runtime;
using Mome.Engines;
using Mome.Gguf;
using Mome.Ilgpu.Model;

namespace Mome.Ilgpu;

/// <summary>
/// A Llama GGUF model for the ILGPU engine: read by the managed GGUF reader (no native core
/// needed), checked as the native engine checks it, its weights converted to F32 on the accelerator.
/// </summary>
public sealed class IlgpuModel : IDisposable
{
    private readonly GgufFile _file;
    private MomeTokenizer? _tokenizer;
    private uint? _fingerprint;

    private IlgpuModel(GgufFile file, ModelConfig config, IlgpuAccelerator kind)
    {
        _file = file;
        Config = config;
        AcceleratorKind = kind;
        Accelerator = IlgpuDevice.Get(kind);
        Weights = new DeviceWeights(file, config, Accelerator);
    }

    public string Path => _file.Path;
    public ModelConfig Config { get; }
    public IlgpuAccelerator AcceleratorKind { get; }

    /// <summary>The tokenizer the file describes (read on first use; MomeException when it has none Mome supports).</summary>
    public MomeTokenizer Tokenizer => _tokenizer ??= MomeTokenizer.FromFile(_file);

    /// <summary>The model's identity as bank files name it (computed on first use, as the native core does).</summary>
    internal uint Fingerprint => _fingerprint ??= Banks.ModelFingerprint.Of(_file, Config);

    internal Accelerator Accelerator { get; }
    internal DeviceWeights Weights { get; }

    /// <summary>Opens a model; MomeException with the native engine's code and message for a
    /// file the native engine refuses too, Unsupported for quantized weights.</summary>
    public static IlgpuModel Open(string path, IlgpuAccelerator accelerator = IlgpuAccelerator.Cpu)
    {
        var file = GgufFile.Open(path);
        try
        {
            var config = LlamaConfigReader.Read(file);
            LlamaConfigReader.CheckTensors(file, config);
            return new IlgpuModel(file, config, accelerator);
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    public void Dispose()
    {
        Weights.Dispose();
        _file.Dispose();
    }
}
