using ILGPU;
using ILGPU.Runtime;
using Mome.Gguf;

namespace Mome.Ilgpu.Model;

/// <summary>A weight matrix on the accelerator as F32 (rows x cols, row-major), with the type
/// it had in the file (activations are rounded to F16/BF16 before it, as ggml does).</summary>
internal sealed record DeviceMatrix(MemoryBuffer1D<float, Stride1D.Dense> Buffer, int Rows, int Cols, TensorType FileType);

internal sealed record DeviceLayer(
    MemoryBuffer1D<float, Stride1D.Dense> AttnNorm, DeviceMatrix Wq, DeviceMatrix Wk, DeviceMatrix Wv, DeviceMatrix Wo,
    MemoryBuffer1D<float, Stride1D.Dense> FfnNorm, DeviceMatrix Gate, DeviceMatrix Up, DeviceMatrix Down);

/// <summary>The frozen model's weights on one accelerator.</summary>
internal sealed class DeviceWeights : IDisposable
{
    private readonly List<MemoryBuffer> _owned = [];

    public DeviceWeights(GgufFile f, ModelConfig c, Accelerator accelerator)
    {
        try
        {
            TokenEmbedding = Matrix(f, accelerator, "token_embd.weight");
            Output = c.TiedOutput ? TokenEmbedding : Matrix(f, accelerator, "output.weight");
            OutputNorm = Vector(f, accelerator, "output_norm.weight");
            RopeFactors = c.HasRopeFreqs ? TensorDecoder.ToF32(f, f.FindTensor("rope_freqs.weight")!) : null;
            for (var l = 0; l < c.LayerCount; l++)
            {
                var p = $"blk.{l}.";
                Layers.Add(new DeviceLayer(Vector(f, accelerator, p + "attn_norm.weight"), Matrix(f, accelerator, p + "attn_q.weight"),
                    Matrix(f, accelerator, p + "attn_k.weight"), Matrix(f, accelerator, p + "attn_v.weight"),
                    Matrix(f, accelerator, p + "attn_output.weight"), Vector(f, accelerator, p + "ffn_norm.weight"),
                    Matrix(f, accelerator, p + "ffn_gate.weight"), Matrix(f, accelerator, p + "ffn_up.weight"),
                    Matrix(f, accelerator, p + "ffn_down.weight")));
            }
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public DeviceMatrix TokenEmbedding { get; }
    public DeviceMatrix Output { get; }
    public MemoryBuffer1D<float, Stride1D.Dense> OutputNorm { get; }

    /// <summary>Llama-3 RoPE frequency factors (rope_freqs.weight), kept on the host: the host computes the angles.</summary>
    public float[]? RopeFactors { get; }

    public List<DeviceLayer> Layers { get; } = [];

    public void Dispose()
    {
        foreach (var b in _owned) b.Dispose();
        _owned.Clear();
    }

    private MemoryBuffer1D<float, Stride1D.Dense> Upload(Accelerator accelerator, float[] data)
    {
        var buffer = accelerator.Allocate1D(data);
        _owned.Add(buffer);
        return buffer;
    }

    private MemoryBuffer1D<float, Stride1D.Dense> Vector(GgufFile f, Accelerator accelerator, string name) =>
        Upload(accelerator, TensorDecoder.ToF32(f, f.FindTensor(name)!));

    private DeviceMatrix Matrix(GgufFile f, Accelerator accelerator, string name)
    {
        var t = f.FindTensor(name)!;
        return new DeviceMatrix(Upload(accelerator, TensorDecoder.ToF32(f, t)), checked((int)t.Shape[1]), checked((int)t.Shape[0]), (TensorType)t.Type);
    }
}
