using System.Buffers.Binary;
using System.Numerics;

namespace Mome.Ilgpu.Banks;

/// <summary>CRC-32C (Castagnoli) as the native core's crc32c(crc, data, size): chainable, with the
/// register inverted before and after (hardware CRC instructions where the CPU has them).</summary>
internal static unsafe class Crc32C
{
    public static uint Append(uint crc, ReadOnlySpan<byte> data)
    {
        var c = ~crc;
        for (; data.Length >= 8; data = data[8..]) c = BitOperations.Crc32C(c, BinaryPrimitives.ReadUInt64LittleEndian(data));
        foreach (var b in data) c = BitOperations.Crc32C(c, b);
        return ~c;
    }

    /// <summary>Over <paramref name="size"/> bytes at <paramref name="data"/>, in pieces below 2 GiB.</summary>
    public static uint Append(uint crc, byte* data, ulong size)
    {
        const ulong piece = 1 << 30;
        for (ulong at = 0; at < size; at += piece) crc = Append(crc, new ReadOnlySpan<byte>(data + at, (int)Math.Min(piece, size - at)));
        return crc;
    }
}
