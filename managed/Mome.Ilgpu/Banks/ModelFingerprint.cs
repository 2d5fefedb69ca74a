using System.Runtime.InteropServices;
using Mome.Gguf;

namespace Mome.Ilgpu.Banks;

/// <summary>
/// A model's identity as the native core computes it (memory/bank.cpp model_fingerprint): the
/// CRC-32C of its hyper-parameters, then of every tensor's name, type, four-entry shape and bytes
/// in file order. Bank files name it, so a bank is refused by a model with other weights.
/// </summary>
internal static unsafe class ModelFingerprint
{
    private const int MaxDims = 4;

    public static uint Of(GgufFile file, ModelConfig c)
    {
        long[] dims = [c.VocabSize, c.EmbeddingLength, c.LayerCount, c.HeadCount, c.KvHeadCount, c.HeadDim, c.ValueHeadDim, c.FeedForwardLength, c.RopeDimensions];
        var crc = Crc32C.Append(0, MemoryMarshal.AsBytes(dims.AsSpan()));
        Span<long> ne = stackalloc long[MaxDims];
        foreach (var t in file.Tensors)
        {
            crc = Crc32C.Append(crc, System.Text.Encoding.UTF8.GetBytes(t.Name));
            var type = t.Type;
            crc = Crc32C.Append(crc, MemoryMarshal.AsBytes(new ReadOnlySpan<uint>(in type)));
            ne.Fill(1);
            t.Shape.CopyTo(ne);
            crc = Crc32C.Append(crc, MemoryMarshal.AsBytes(ne));
            crc = Crc32C.Append(crc, file.TensorPointer(t), t.SizeBytes);
        }
        return crc;
    }
}
