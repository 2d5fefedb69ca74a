namespace Mome;

/// <summary>
/// GPT-2's reversible byte-to-character mapping used by byte-level BPE vocabularies: printable
/// Latin-1 bytes map to themselves, the other 68 bytes to U+0100 onwards in byte order, so every
/// byte sequence is a string of visible characters (a space becomes 'Ġ', a newline 'Ċ').
/// </summary>
internal static class ByteLevelMapping
{
    private static readonly char[] ByteToChar = BuildByteToChar();
    private static readonly Dictionary<char, byte> CharToByte = BuildCharToByte();

    /// <summary>The mapped form of UTF-8 bytes: one character per byte.</summary>
    public static string Encode(byte[] bytes) =>
        string.Create(bytes.Length, bytes, static (chars, source) =>
        {
            for (var i = 0; i < source.Length; i++) chars[i] = ByteToChar[source[i]];
        });

    public static bool TryDecode(char c, out byte b) => CharToByte.TryGetValue(c, out b);

    private static bool IsPrintable(int b) => b is >= 0x21 and <= 0x7E or >= 0xA1 and <= 0xAC or >= 0xAE and <= 0xFF;

    private static char[] BuildByteToChar()
    {
        var map = new char[256];
        var next = 256;
        for (var b = 0; b < 256; b++) map[b] = IsPrintable(b) ? (char)b : (char)next++;
        return map;
    }

    private static Dictionary<char, byte> BuildCharToByte()
    {
        var map = new Dictionary<char, byte>(256);
        for (var b = 0; b < 256; b++) map[ByteToChar[b]] = (byte)b;
        return map;
    }
}
