using Mome.Gguf;

namespace Mome.Ilgpu.Model;

/// <summary>A tensor's elements as F32 (F32, F16 and BF16 tensors; the ILGPU engine does not
/// dequantize block-quantized ones).</summary>
internal static class TensorDecoder
{
    public static float[] ToF32(GgufFile file, GgufTensor t) => (TensorType)t.Type is TensorType.F32 or TensorType.F16 or TensorType.BF16
        ? Widening.ToF32(file.TensorData(t), (TensorType)t.Type, checked((int)t.ElementCount))
        : throw new MomeException(MomeErrorCode.Unsupported,
            $"{file.Path}: tensor '{t.Name}' is {GgufTensorTypes.Name(t.Type)}; the ILGPU engine computes with F32, F16 and BF16 " +
            "weights only (run quantized models on the native engine)");
}
