using Mome.Interop;
using Mome.Native;

namespace Mome;

/// <summary>A model file (GGUF, memory-mapped). Dispose it to unmap the file.</summary>
public sealed unsafe class MomeModel : IDisposable
{
    private readonly SafeModelHandle _handle;
    private IReadOnlyList<TensorInfo>? _tensors;
    private IReadOnlyDictionary<string, MetadataValue>? _metadata;

    private MomeModel(SafeModelHandle handle, string path)
    {
        _handle = handle;
        Path = path;
    }

    public string Path { get; }

    internal SafeModelHandle Handle => _handle;

    /// <summary>
    /// Opens a model file. By default it must be a complete Llama model whose tensors Mome
    /// computes with; <paramref name="metadataOnly"/> opens any GGUF file for inspection.
    /// </summary>
    /// <exception cref="MomeException">The file is missing, malformed, or not a usable model;
    /// the message names the file and the problem.</exception>
    public static MomeModel Open(string path, bool metadataOnly = false)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        // Checked here for a message that needs no native round trip.
        if (Directory.Exists(path))
            throw new MomeException(MomeErrorCode.IoError, $"{path}: is a directory, not a file");
        return new MomeModel(SafeModelHandle.Open(path, metadataOnly), path);
    }

    /// <summary>Writes a synthetic Llama model to <paramref name="path"/> (atomically).</summary>
    public static void CreateSynthetic(SyntheticModelConfig config, string path, ulong seed = 42)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentException.ThrowIfNullOrEmpty(path);
        MomeNativeLibrary.EnsureLoaded();
        var p = config.ToNative(seed);
        var utf8 = System.Text.Encoding.UTF8.GetBytes(System.IO.Path.GetFullPath(path) + "\0");
        fixed (byte* f = utf8)
            Status.Check(NativeMethods.mome_synthetic_write(&p, f));
    }

    /// <summary>
    /// Writes <paramref name="source"/> to <paramref name="destination"/> with its F32/F16/BF16
    /// matrices quantized to <see cref="TensorType.Q8_0"/> or <see cref="TensorType.Q4_0"/>, byte
    /// for byte as llama.cpp's quantizer does them without an importance matrix.
    /// </summary>
    public static void Quantize(string source, string destination, TensorType type)
    {
        ArgumentException.ThrowIfNullOrEmpty(source);
        ArgumentException.ThrowIfNullOrEmpty(destination);
        if (type is not (TensorType.Q8_0 or TensorType.Q4_0))
            throw new ArgumentException($"Mome quantizes models to Q8_0 or Q4_0, not {type}", nameof(type));
        MomeNativeLibrary.EnsureLoaded();
        var src = System.Text.Encoding.UTF8.GetBytes(System.IO.Path.GetFullPath(source) + "\0");
        var dst = System.Text.Encoding.UTF8.GetBytes(System.IO.Path.GetFullPath(destination) + "\0");
        fixed (byte* s = src)
        fixed (byte* d = dst)
            Status.Check(NativeMethods.mome_model_quantize(s, d, (MomeTensorType)(int)type));
    }

    /// <summary>True when the file is a Llama model (always, unless opened metadata-only).</summary>
    public bool IsLlama => _handle.Use(h =>
    {
        MomeLlamaConfig c;
        return NativeMethods.mome_model_get_config(h, &c) == MomeStatus.Ok;
    });

    /// <summary>Llama hyper-parameters; throws <see cref="MomeException"/> (Unsupported) for
    /// a metadata-only open of another architecture.</summary>
    public ModelConfig Config => _handle.Use(h =>
    {
        MomeLlamaConfig c;
        Status.Check(NativeMethods.mome_model_get_config(h, &c));
        return new ModelConfig
        {
            VocabSize = c.NVocab, ContextLength = c.NCtxTrain, EmbeddingLength = c.NEmbd, LayerCount = c.NLayer,
            HeadCount = c.NHead, KvHeadCount = c.NHeadKv, HeadDim = c.HeadDim, ValueHeadDim = c.HeadDimV,
            FeedForwardLength = c.NFf, RopeDimensions = c.NRot, RopeFreqBase = c.RopeFreqBase,
            RopeFreqScale = c.RopeFreqScale, RmsNormEps = c.RmsNormEps, RopeScaling = (RopeScaling)(int)c.RopeScaling,
            RopeScalingFactor = c.RopeScalingFactor, RopeOriginalContext = c.RopeOriginalContext,
            TiedOutput = c.TiedOutput != 0, HasRopeFreqs = c.HasRopeFreqs != 0,
            WeightType = (TensorType)(int)c.WeightType, BosTokenId = c.BosTokenId, EosTokenId = c.EosTokenId,
            ParameterCount = c.NParams,
        };
    });

    public GgufFileInfo FileInfo => _handle.Use(h =>
    {
        MomeFileInfo f;
        Status.Check(NativeMethods.mome_model_get_file_info(h, &f));
        return new GgufFileInfo(f.GgufVersion, f.Alignment, f.FileSize, f.DataOffset);
    });

    /// <summary>Metadata in file order (enumeration) and by key (lookup).</summary>
    public IReadOnlyDictionary<string, MetadataValue> Metadata => _metadata ??= ReadMetadata();

    public IReadOnlyList<TensorInfo> Tensors => _tensors ??= ReadTensors();

    /// <summary>A tensor's elements converted to F32 (F32, F16 and BF16 tensors; Q8_0, Q4_0, Q4_1,
    /// Q5_0, Q5_1, Q4_K, Q5_K and Q6_K tensors dequantized).</summary>
    public float[] ReadTensor(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        return _handle.Use(h =>
        {
            ulong index;
            var utf8 = System.Text.Encoding.UTF8.GetBytes(name + "\0");
            fixed (byte* n = utf8)
                Status.Check(NativeMethods.mome_model_tensor_find(h, n, &index));
            var info = Tensors[(int)index];
            var data = new float[checked((int)info.ElementCount)];
            fixed (float* d = data)
                Status.Check(NativeMethods.mome_model_tensor_read_f32(h, index, d, (ulong)data.LongLength));
            return data;
        });
    }

    public void Dispose() => _handle.Dispose();

    private IReadOnlyDictionary<string, MetadataValue> ReadMetadata() => _handle.Use<IReadOnlyDictionary<string, MetadataValue>>(h =>
    {
        ulong count;
        Status.Check(NativeMethods.mome_model_meta_count(h, &count));
        var result = new OrderedDictionary<string, MetadataValue>();
        for (ulong i = 0; i < count; i++)
        {
            byte* key;
            IntPtr value;
            Status.Check(NativeMethods.mome_model_meta_at(h, i, &key, &value));
            result.Add(Status.Utf8(key), new MetadataValue(_handle, value));
        }
        return result;
    });

    private IReadOnlyList<TensorInfo> ReadTensors() => _handle.Use(h =>
    {
        ulong count;
        Status.Check(NativeMethods.mome_model_tensor_count(h, &count));
        var result = new List<TensorInfo>((int)Math.Min(count, int.MaxValue));
        for (ulong i = 0; i < count; i++)
        {
            MomeTensorInfo t;
            Status.Check(NativeMethods.mome_model_tensor_at(h, i, &t));
            var shape = new long[t.NDims];
            for (var d = 0; d < shape.Length; d++) shape[d] = t.Ne[d];
            result.Add(new TensorInfo(Status.Utf8(t.Name), (TensorType)(int)t.Type, shape, t.FileOffset, t.SizeBytes));
        }
        return result;
    });
}
