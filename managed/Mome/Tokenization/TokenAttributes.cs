namespace Mome;

/// <summary>
/// What a vocabulary entry is, as llama.cpp's <c>llama_token_attr</c> (the GGUF
/// <c>tokenizer.ggml.token_type</c> array gives one type per token; llama.cpp turns it into
/// these bits and adds <see cref="Control"/> to end-of-generation tokens by their text).
/// </summary>
[Flags]
internal enum TokenAttributes
{
    Undefined = 0,
    Unknown = 1 << 0,
    Unused = 1 << 1,
    Normal = 1 << 2,
    Control = 1 << 3,
    UserDefined = 1 << 4,
    Byte = 1 << 5,
}

internal static class TokenTypes
{
    /// <summary>The attribute of a GGUF token type (llama.cpp's <c>llama_token_type</c>).</summary>
    public static TokenAttributes ToAttributes(long tokenType) => tokenType switch
    {
        1 => TokenAttributes.Normal,
        2 => TokenAttributes.Unknown,
        3 => TokenAttributes.Control,
        4 => TokenAttributes.UserDefined,
        5 => TokenAttributes.Unused,
        6 => TokenAttributes.Byte,
        _ => TokenAttributes.Undefined,
    };
}
