namespace Mome;

/// <summary>Which of llama.cpp's tokenizers a vocabulary uses.</summary>
internal enum VocabularyKind
{
    /// <summary><c>tokenizer.ggml.model</c> = "llama": SentencePiece-style pieces with scores.</summary>
    SentencePiece,

    /// <summary><c>tokenizer.ggml.model</c> = "gpt2" with the Llama-3 pre-tokenizer: byte-level BPE.</summary>
    ByteLevelBpe,
}

/// <summary>
/// A model's vocabulary as llama.cpp loads it from GGUF metadata (<c>llama_vocab::load</c>):
/// the token texts, scores and attributes, the merges of a BPE vocabulary, the special
/// token ids with llama.cpp's defaults, and the add-BOS/EOS and space-prefix flags.
/// </summary>
internal sealed class GgufVocabulary
{
    public const int None = -1;

    private const string Prefix = "tokenizer.ggml.";

    /// <summary>The <c>tokenizer.ggml.pre</c> values that llama.cpp maps to its Llama-3 pre-tokenizer
    /// (the others of that group, e.g. "falcon3", belong to other architectures).</summary>
    private static readonly string[] Llama3PreTokenizers = ["llama3", "llama-v3", "llama-bpe"];

    private GgufVocabulary(string source, VocabularyKind kind, string[] texts, float[] scores, TokenAttributes[] attributes)
    {
        Source = source;
        Kind = kind;
        Texts = texts;
        Scores = scores;
        Attributes = attributes;
    }

    /// <summary>The file the vocabulary came from, for messages.</summary>
    public string Source { get; }

    public VocabularyKind Kind { get; }

    public string[] Texts { get; }

    public float[] Scores { get; }

    public TokenAttributes[] Attributes { get; }

    public int Count => Texts.Length;

    /// <summary>Token id by text (every token, special ones included).</summary>
    public Dictionary<string, int> Ids { get; } = new(StringComparer.Ordinal);

    /// <summary>BPE merges in rank order, "left right" (empty for SentencePiece).</summary>
    public string[] Merges { get; private set; } = [];

    public int Bos { get; private set; } = None;
    public int Eos { get; private set; } = None;
    public int Unknown { get; private set; } = None;
    public int EndOfTurn { get; private set; } = None;
    public int EndOfMessage { get; private set; } = None;
    public int FimPrefix { get; private set; } = None;
    public int FimSuffix { get; private set; } = None;
    public int FimMiddle { get; private set; } = None;
    public int FimPad { get; private set; } = None;
    public int FimRepo { get; private set; } = None;
    public int FimSeparator { get; private set; } = None;

    public bool AddBos { get; private set; }
    public bool AddEos { get; private set; }
    public bool AddSpacePrefix { get; private set; }

    /// <exception cref="MomeException">The metadata does not describe a vocabulary Mome can tokenize with.</exception>
    public static GgufVocabulary Read(MomeModel model) => Read(model.Metadata, model.Path);

    /// <summary>The vocabulary in <paramref name="meta"/>, read from file <paramref name="source"/>.</summary>
    public static GgufVocabulary Read(IReadOnlyDictionary<string, MetadataValue> meta, string source)
    {

        var modelName = OptionalString(meta, source, Prefix + "model")
            ?? throw Format(source, $"metadata '{Prefix}model' is missing: no tokenizer in this file");
        var pre = OptionalString(meta, source, Prefix + "pre");
        var kind = modelName switch
        {
            "llama" => VocabularyKind.SentencePiece,
            "gpt2" when pre is not null && Llama3PreTokenizers.Contains(pre) => VocabularyKind.ByteLevelBpe,
            "gpt2" => throw new MomeException(MomeErrorCode.Unsupported,
                $"{source}: tokenizer.ggml.model 'gpt2' with pre-tokenizer '{pre ?? "<absent>"}' is not supported; " +
                $"Mome supports the Llama-3 pre-tokenizer ({string.Join(", ", Llama3PreTokenizers)})"),
            _ => throw new MomeException(MomeErrorCode.Unsupported,
                $"{source}: tokenizer.ggml.model '{modelName}' is not supported; Mome supports 'llama' (SentencePiece) " +
                "and 'gpt2' (byte-level BPE with the Llama-3 pre-tokenizer)"),
        };

        var tokensKey = Prefix + "tokens";
        if (!meta.TryGetValue(tokensKey, out var tokenArray))
            throw Format(source, $"metadata '{tokensKey}' is missing");
        if (!tokenArray.IsArray || tokenArray.ElementType != MetadataType.String)
            throw Format(source, $"metadata '{tokensKey}' is not an array of strings");
        if (tokenArray.Count == 0)
            throw Format(source, $"metadata '{tokensKey}' is empty");
        if (tokenArray.Count > int.MaxValue / 2)
            throw Format(source, $"metadata '{tokensKey}' has {tokenArray.Count} entries, too many");
        var texts = tokenArray.GetStrings();
        var n = texts.Length;

        var scores = new float[n];
        if (meta.TryGetValue(Prefix + "scores", out var scoreArray))
        {
            CheckArray(source, Prefix + "scores", scoreArray, n, MetadataType.Float32, MetadataType.Int32);
            for (var i = 0; i < n; i++) scores[i] = (float)scoreArray.GetDouble((ulong)i);
        }

        var attributes = new TokenAttributes[n];
        if (meta.TryGetValue(Prefix + "token_type", out var typeArray))
        {
            CheckArray(source, Prefix + "token_type", typeArray, n, MetadataType.Int32);
            for (var i = 0; i < n; i++) attributes[i] = TokenTypes.ToAttributes(typeArray.GetInt64((ulong)i));
        }
        else
        {
            Array.Fill(attributes, TokenAttributes.Normal);
        }

        var vocab = new GgufVocabulary(source, kind, texts, scores, attributes);
        for (var i = 0; i < n; i++)
        {
            // As llama.cpp: an empty entry gets a placeholder text that no input can produce.
            if (texts[i].Length == 0) texts[i] = $"[EMPTY_{i}]";
            if (!vocab.Ids.TryAdd(texts[i], i))
                throw Format(source, $"duplicate token in vocabulary: '{texts[i]}' has ids {vocab.Ids[texts[i]]} and {i}");
        }

        if (kind == VocabularyKind.ByteLevelBpe)
        {
            var mergesKey = Prefix + "merges";
            if (!meta.TryGetValue(mergesKey, out var merges))
                throw Format(source, $"metadata '{mergesKey}' is missing (a 'gpt2' vocabulary needs its BPE merges)");
            if (!merges.IsArray || merges.ElementType != MetadataType.String)
                throw Format(source, $"metadata '{mergesKey}' is not an array of strings");
            vocab.Merges = merges.GetStrings();
        }

        vocab.ReadFlagsAndSpecialTokens(meta);
        SpecialTokenRules.Apply(vocab);
        return vocab;
    }

    /// <summary>End-of-generation tokens (filled by <see cref="SpecialTokenRules"/>).</summary>
    public HashSet<int> EndOfGeneration { get; } = [];

    internal void SetDetected(int endOfTurn, int endOfMessage, int fimPrefix, int fimSuffix, int fimMiddle, int fimPad, int fimRepo,
        int fimSeparator)
    {
        EndOfTurn = endOfTurn;
        EndOfMessage = endOfMessage;
        FimPrefix = fimPrefix;
        FimSuffix = fimSuffix;
        FimMiddle = fimMiddle;
        FimPad = fimPad;
        FimRepo = fimRepo;
        FimSeparator = fimSeparator;
    }

    private void ReadFlagsAndSpecialTokens(IReadOnlyDictionary<string, MetadataValue> meta)
    {
        // llama.cpp's defaults per tokenizer model, then what the file says.
        if (Kind == VocabularyKind.SentencePiece)
        {
            Bos = 1;
            Eos = 2;
            Unknown = 0;
            AddSpacePrefix = true;
            AddBos = true;
        }
        else
        {
            Bos = 11;
            Eos = 11;
            AddBos = true; // the Llama-3 pre-tokenizer's default
        }
        AddSpacePrefix = OptionalBool(meta, Source, Prefix + "add_space_prefix") ?? AddSpacePrefix;

        Bos = SpecialId(meta, "bos_token_id", Bos);
        Eos = SpecialId(meta, "eos_token_id", Eos);
        EndOfTurn = SpecialId(meta, "eot_token_id", None);
        EndOfMessage = SpecialId(meta, "eom_token_id", None);
        Unknown = SpecialId(meta, "unknown_token_id", Unknown);
        // The older prefix/suffix/middle keys win over the fim_* ones, as in llama.cpp.
        FimPrefix = SpecialId(meta, "prefix_token_id", SpecialId(meta, "fim_pre_token_id", None));
        FimSuffix = SpecialId(meta, "suffix_token_id", SpecialId(meta, "fim_suf_token_id", None));
        FimMiddle = SpecialId(meta, "middle_token_id", SpecialId(meta, "fim_mid_token_id", None));
        FimPad = SpecialId(meta, "fim_pad_token_id", None);
        FimRepo = SpecialId(meta, "fim_rep_token_id", None);
        FimSeparator = SpecialId(meta, "fim_sep_token_id", None);

        AddBos = OptionalBool(meta, Source, Prefix + "add_bos_token") ?? AddBos;
        AddEos = OptionalBool(meta, Source, Prefix + "add_eos_token") ?? AddEos;
        if (AddBos && Bos == None)
            throw Format(Source, $"{Prefix}add_bos_token is true, but {Prefix}bos_token_id is not set");
        if (AddEos && Eos == None)
            throw Format(Source, $"{Prefix}add_eos_token is true, but {Prefix}eos_token_id is not set");
    }

    /// <summary>As llama.cpp: a default outside the vocabulary is dropped, and an id from the
    /// file outside it is ignored (the default stays).</summary>
    private int SpecialId(IReadOnlyDictionary<string, MetadataValue> meta, string name, int fallback)
    {
        if (fallback >= Count) fallback = None;
        var key = Prefix + name;
        if (!meta.TryGetValue(key, out var value)) return fallback;
        if (value.IsArray || !IsInteger(value.Type))
            throw Format(Source, $"metadata '{key}' is not an integer");
        var id = value.GetInt64();
        return id >= 0 && id < Count ? (int)id : fallback;
    }

    private static void CheckArray(string source, string key, MetadataValue value, int tokenCount, params MetadataType[] elementTypes)
    {
        if (!value.IsArray || !elementTypes.Contains(value.ElementType))
            throw Format(source, $"metadata '{key}' is not an array of {string.Join(" or ", elementTypes.Select(t => t.ToString().ToLowerInvariant()))}");
        if (value.Count != (ulong)tokenCount)
            throw Format(source, $"metadata '{key}' has {value.Count} entries but '{Prefix}tokens' has {tokenCount}");
    }

    private static string? OptionalString(IReadOnlyDictionary<string, MetadataValue> meta, string source, string key)
    {
        if (!meta.TryGetValue(key, out var value)) return null;
        if (value.Type != MetadataType.String) throw Format(source, $"metadata '{key}' is not a string");
        return value.GetString();
    }

    private static bool? OptionalBool(IReadOnlyDictionary<string, MetadataValue> meta, string source, string key)
    {
        if (!meta.TryGetValue(key, out var value)) return null;
        if (value.Type != MetadataType.Bool) throw Format(source, $"metadata '{key}' is not a bool");
        return value.GetBool();
    }

    private static bool IsInteger(MetadataType t) => t is MetadataType.UInt8 or MetadataType.Int8 or MetadataType.UInt16
        or MetadataType.Int16 or MetadataType.UInt32 or MetadataType.Int32 or MetadataType.UInt64 or MetadataType.Int64;

    private static MomeException Format(string source, string message) => new(MomeErrorCode.FormatError, $"{source}: {message}");
}
