using System.Buffers.Binary;
using System.Runtime.InteropServices;
using Mome.Gguf;

namespace Mome.Ilgpu.Model;

/// <summary>A tensor's elements as F32 (F32, F16 and BF16 tensors; the ILGPU engine does not
/// dequantize block-quantized ones).</summary>
internal static class TensorDecoder
{
    public static float[] ToF32(GgufFile file, GgufTensor t)
    {
        var bytes = file.TensorData(t);
        var result = new float[checked((int)t.ElementCount)];
        switch ((TensorType)t.Type)
        {
            case TensorType.F32:
                MemoryMarshal.Cast<byte, float>(bytes).CopyTo(result);
                break;
            case TensorType.F16:
                for (var i = 0; i < result.Length; i++) result[i] = (float)BinaryPrimitives.ReadHalfLittleEndian(bytes[(2 * i)..]);
                break;
            case TensorType.BF16:
                for (var i = 0; i < result.Length; i++)
                    result[i] = BitConverter.Int32BitsToSingle(BinaryPrimitives.ReadUInt16LittleEndian(bytes[(2 * i)..]) << 16);
                break;
            default:
                throw new MomeException(MomeErrorCode.Unsupported,
                    $"{file.Path}: tensor '{t.Name}' is {GgufTensorTypes.Name(t.Type)}; the ILGPU engine computes with F32, F16 and BF16 " +
                    "weights only (run quantized models on the native engine)");
        }
        return result;
    }
}
