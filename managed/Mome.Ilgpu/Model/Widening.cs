using System.Buffers.Binary;
using System.Runtime.InteropServices;

namespace Mome.Ilgpu.Model;

/// <summary>F32, F16 and BF16 little-endian bytes as F32 values (what the kernels compute with).</summary>
internal static class Widening
{
    public static float[] ToF32(ReadOnlySpan<byte> bytes, TensorType type, int count)
    {
        var result = new float[count];
        switch (type)
        {
            case TensorType.F32:
                MemoryMarshal.Cast<byte, float>(bytes[..(4 * count)]).CopyTo(result);
                break;
            case TensorType.F16:
                for (var i = 0; i < count; i++) result[i] = (float)BinaryPrimitives.ReadHalfLittleEndian(bytes[(2 * i)..]);
                break;
            case TensorType.BF16:
                for (var i = 0; i < count; i++) result[i] = BitConverter.Int32BitsToSingle(BinaryPrimitives.ReadUInt16LittleEndian(bytes[(2 * i)..]) << 16);
                break;
            default:
                throw new ArgumentException($"{type} is not F32, F16 or BF16", nameof(type));
        }
        return result;
    }
}
