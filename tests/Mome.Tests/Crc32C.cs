namespace Mome.Tests;

/// <summary>CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), bit by bit: the tests' own
/// copy, to forge native files whose checksum is right.</summary>
internal static class Crc32C
{
    public static uint Of(ReadOnlySpan<byte> data)
    {
        var crc = 0xFFFFFFFFu;
        foreach (var b in data)
        {
            crc ^= b;
            for (var i = 0; i < 8; i++) crc = (crc & 1) != 0 ? (crc >> 1) ^ 0x82F63B78u : crc >> 1;
        }
        return ~crc;
    }

    /// <summary>A native state file with its trailing CRC-32C recomputed over the rest.</summary>
    public static byte[] Resealed(byte[] file)
    {
        if (file.Length < 4) return file;
        var body = file.AsSpan(0, file.Length - 4);
        return [.. body, .. BitConverter.GetBytes(Of(body))];
    }
}
