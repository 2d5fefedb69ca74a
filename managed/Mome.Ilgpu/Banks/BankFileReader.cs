using System.Globalization;
using Mome.Gguf;

namespace Mome.Ilgpu.Banks;

/// <summary>
/// Reads and verifies a bank file (safetensors: an 8-byte header length, a JSON header, the
/// tables) for a model without the native core, with the native loader's rules, order and
/// messages (memory/bank_file.cpp): every count and offset checked against the file's size
/// before anything is read, the base model's shape and weight checksum, every table's CRC-32C.
/// </summary>
internal sealed unsafe class BankFileReader
{
    private const string Format = "mome-bank";
    private const int Version = 2;
    private const ulong MaxHeaderBytes = 64UL << 20;
    private const int MaxMemoryLayers = 8;
    private const float GateOff = -2f;

    private readonly MappedFile _file;
    private readonly string _path;
    private HeaderJson _header = null!;
    private HeaderJson? _meta;

    private BankFileReader(MappedFile file)
    {
        _file = file;
        _path = file.Path;
    }

    /// <summary>The verified layout of the bank at <paramref name="file"/> for a model of
    /// <paramref name="config"/> at <paramref name="modelPath"/>; MomeException otherwise.</summary>
    public static BankLayout Read(MappedFile file, ModelConfig config, string modelPath, Func<uint> fingerprint) =>
        new BankFileReader(file).Read(config, modelPath, fingerprint);

    private MomeException Bad(string why) => new(MomeErrorCode.FormatError, $"{_path}: {why}");

    private static string ShapeOf(ModelConfig c) =>
        $"n_vocab={c.VocabSize},n_embd={c.EmbeddingLength},n_layer={c.LayerCount},n_head={c.HeadCount},n_head_kv={c.KvHeadCount},n_ff={c.FeedForwardLength}";

    private BankLayout Read(ModelConfig c, string modelPath, Func<uint> fingerprint)
    {
        var size = _file.Size;
        if (size < 8) throw Bad("file is too short to be a bank (safetensors) file");
        var headerSize = BitConverter.ToUInt64(_file.Span(0, 8));
        if (headerSize > size - 8 || headerSize > MaxHeaderBytes)
            throw Bad($"header length {headerSize} runs past the end of the file ({size} bytes)");
        _header = HeaderJson.Parse(_file.Span(8, headerSize), _path);
        if (_header.Type != HeaderJson.Kind.Object) throw Bad("the header is not a JSON object");
        _meta = _header.Find("__metadata__");
        if (_meta is null || _meta.Type != HeaderJson.Kind.Object || _meta.Find("format") is null || Text("format") != Format)
            throw Bad($"not a Mome bank file (its safetensors metadata has no format '{Format}')");
        var version = WholeUnsigned("metadata 'mome.version'", Text("mome.version"));
        if (version is not (1 or Version))
            throw new MomeException(MomeErrorCode.Unsupported,
                $"{_path}: bank file version {Show(Text("mome.version"))} is not supported (versions 1 and {Version} are)");

        string expectedShape = ShapeOf(c), fileShape = Text("mome.base_shape");
        if (fileShape != expectedShape)
            throw new MomeException(MomeErrorCode.InvalidArgument,
                $"{_path}: this bank was made for a different base model ({Show(fileShape)}); {modelPath} has {expectedShape}");
        var ours = fingerprint().ToString("x8", CultureInfo.InvariantCulture);
        if (Text("mome.base_fingerprint") != ours)
            throw new MomeException(MomeErrorCode.InvalidArgument,
                $"{_path}: this bank was made for a different base model: its weights' checksum is {Show(Text("mome.base_fingerprint"))}, " +
                $"{modelPath} has {ours} (same shape, other weights)");

        var p = ReadParameters(c);
        var dataStart = 8 + headerSize;
        var dataSize = size - dataStart;
        var layers = new List<BankLayerLayout>();
        var expectedTables = 0;
        for (var i = 0; i < p.Layers.Count; i++)
        {
            var elem = p.WeightType == TensorType.F32 ? 4UL : 2UL;
            long[] keys = p.Router == RouterKind.Product ? [2, (long)Math.Round(Math.Sqrt(p.Experts)), p.KeyDim / 2] : [p.Experts, p.KeyDim];
            long[] expert = [p.Experts, p.Rank, c.EmbeddingLength];
            BankTable Next(string table, TensorType type, long[] shape, ulong elementSize)
            {
                expectedTables++;
                return Table($"layers.{i}.{table}", type, shape, elementSize, dataStart, dataSize);
            }
            var wq = Next("wq", TensorType.F32, [p.KeyDim, c.EmbeddingLength], 4);
            var centre = Next("centre", TensorType.F32, [c.EmbeddingLength], 4);
            var k = Next("keys", p.WeightType, keys, elem);
            var a = Next("a", p.WeightType, expert, elem);
            var b = Next("b", p.WeightType, expert, elem);
            var gate = new BankTable(dataStart, 0, [0, p.KeyDim]);
            var threshold = GateOff;
            if (version >= 2)
            {
                expectedTables++;
                (gate, threshold) = Gate(i, p.KeyDim, dataStart, dataSize);
            }
            layers.Add(new BankLayerLayout(p.Layers[i], wq, centre, k, a, b, gate, threshold));
        }
        if (_header.Members.Count != expectedTables + 1) throw Bad("the file holds tensors that are not part of a bank");
        return new BankLayout(p, layers);
    }

    private MemoryOptions ReadParameters(ModelConfig c)
    {
        var layers = new List<int>();
        var text = Text("mome.layers");
        for (var at = 0; at <= text.Length;)
        {
            var comma = text.IndexOf(',', at);
            if (comma < 0) comma = text.Length;
            if (layers.Count >= MaxMemoryLayers) throw Bad($"too many memory layers (at most {MaxMemoryLayers})");
            layers.Add((int)Whole("metadata 'mome.layers' entry", text[at..comma], 0, int.MaxValue));
            at = comma + 1;
        }
        var p = new MemoryOptions
        {
            Layers = layers,
            Experts = Integer("mome.n_experts", long.MinValue, long.MaxValue),
            KeyDim = Integer("mome.key_dim", long.MinValue, long.MaxValue),
            Rank = (int)Integer("mome.rank", int.MinValue, int.MaxValue),
            TopK = (int)Integer("mome.top_k", int.MinValue, int.MaxValue),
            Temperature = Real("mome.temperature"),
            Alpha = Real("mome.alpha"),
            Routing = Choice("mome.routing", "sequence", "token") == 1 ? RoutingMode.Token : RoutingMode.Sequence,
            Router = Choice("mome.router", "flat", "product") == 1 ? RouterKind.Product : RouterKind.Flat,
            WeightType = new[] { TensorType.F32, TensorType.F16, TensorType.BF16 }[Choice("mome.weight_type", "F32", "F16", "BF16")],
            Seed = WholeUnsigned("metadata 'mome.seed'", Text("mome.seed")),
        };
        if (BankParameterCheck.Problem(c, p) is { } problem) throw Bad("invalid bank parameters: memory bank: " + problem);
        return p;
    }

    // One of the five fixed-shape tables of a layer.
    private BankTable Table(string name, TensorType type, long[] shape, ulong elementSize, ulong dataStart, ulong dataSize)
    {
        var info = _header.Find(name);
        if (info is null || info.Type != HeaderJson.Kind.Object) throw Bad($"tensor '{name}' is missing");
        var dtype = info.Find("dtype");
        if (dtype is null || dtype.Type != HeaderJson.Kind.String || dtype.Text != type.ToString())
            throw Bad($"tensor '{name}' must have dtype {type}");
        var s = info.Find("shape");
        var same = s is not null && s.Type == HeaderJson.Kind.Array && s.Items.Count == shape.Length;
        for (var d = 0; same && d < shape.Length; d++)
            same = s!.Items[d].Type == HeaderJson.Kind.Number && s.Items[d].Number == shape[d];
        if (!same) throw Bad($"tensor '{name}' has a shape that does not match the bank's parameters");
        var (begin, end, offsets) = Offsets(info, name);
        if (begin != Math.Floor(begin) || end != Math.Floor(end))
            throw Bad($"tensor '{name}' has data_offsets [{Show(offsets.Items[0].Text)}, {Show(offsets.Items[1].Text)}] that are not whole numbers of bytes");
        var bytes = elementSize;
        foreach (var d in shape) bytes *= (ulong)d;
        if (begin < 0 || end < begin || end > dataSize || end - begin != bytes)
            throw Bad($"tensor '{name}' data [{CFormat.F(begin, 0)}, {CFormat.F(end, 0)}) does not fit its {bytes} bytes inside the file's {dataSize} bytes of data");
        var table = new BankTable(dataStart + (ulong)begin, bytes, shape);
        CheckCrc(name, table);
        return table;
    }

    // A layer's gate: the signature count is the file's own, its bytes inside the data.
    private (BankTable Gate, float Threshold) Gate(int i, long keyDim, ulong dataStart, ulong dataSize)
    {
        var name = $"layers.{i}.gate";
        var info = _header.Find(name);
        if (info is null || info.Type != HeaderJson.Kind.Object) throw Bad($"tensor '{name}' is missing");
        var dtype = info.Find("dtype");
        if (dtype is null || dtype.Type != HeaderJson.Kind.String || dtype.Text != "F32") throw Bad($"tensor '{name}' must have dtype F32");
        var s = info.Find("shape");
        var maxRows = dataSize / 4.0 / keyDim;
        if (s is null || s.Type != HeaderJson.Kind.Array || s.Items.Count != 2 || s.Items[0].Type != HeaderJson.Kind.Number ||
            s.Items[1].Type != HeaderJson.Kind.Number || s.Items[1].Number != keyDim || !(s.Items[0].Number >= 0) ||
            s.Items[0].Number > maxRows || s.Items[0].Number != Math.Floor(s.Items[0].Number))
            throw Bad($"tensor '{name}' must have shape [signatures, {keyDim}] within the file");
        var rows = (long)s.Items[0].Number;
        var bytes = (ulong)rows * (ulong)keyDim * 4;
        var (begin, end, _) = Offsets(info, name);
        if (begin < 0 || begin != Math.Floor(begin) || end < begin || end > dataSize || end - begin != bytes)
            throw Bad($"tensor '{name}' data [{CFormat.F(begin, 0)}, {CFormat.F(end, 0)}) does not fit its {bytes} bytes inside the file's {dataSize} bytes of data");
        var gate = new BankTable(dataStart + (ulong)begin, bytes, [rows, keyDim]);
        CheckCrc(name, gate);
        var threshold = Real($"mome.gate_threshold.{i}");
        if (!(threshold >= -2.0f && threshold <= 1.0f)) throw Bad($"metadata 'mome.gate_threshold.{i}' = {CFormat.G(threshold)} is outside [-2, 1]");
        return (gate, threshold);
    }

    private (double Begin, double End, HeaderJson Offsets) Offsets(HeaderJson info, string name)
    {
        var o = info.Find("data_offsets");
        if (o is null || o.Type != HeaderJson.Kind.Array || o.Items.Count != 2 || o.Items[0].Type != HeaderJson.Kind.Number ||
            o.Items[1].Type != HeaderJson.Kind.Number)
            throw Bad($"tensor '{name}' has no valid data_offsets");
        return (o.Items[0].Number, o.Items[1].Number, o);
    }

    private void CheckCrc(string name, BankTable table)
    {
        var want = Text("mome.crc32c." + name);
        var have = Crc32C.Append(0, _file.Data + table.Offset, table.Size).ToString("x8", CultureInfo.InvariantCulture);
        if (want != have) throw Bad($"checksum mismatch in tensor '{name}' (stored {Show(want)}, computed {have}): the file is corrupted");
    }

    private static string Show(string headerText) => HeaderJson.Display(headerText);

    private string Text(string key)
    {
        var v = _meta?.Find(key);
        if (v is null || v.Type != HeaderJson.Kind.String) throw Bad($"metadata '{key}' is missing");
        return v.Text;
    }

    // Whole decimal numbers only: nothing is clamped, wrapped or truncated.
    private void DigitsOnly(string what, string s, bool signAllowed)
    {
        var first = signAllowed && s.StartsWith('-') ? 1 : 0;
        var ok = s.Length > first;
        for (var i = first; ok && i < s.Length; i++) ok = char.IsAsciiDigit(s[i]);
        if (!ok) throw Bad($"{what} = '{Show(s)}' is not a whole number");
    }

    private long Whole(string what, string s, long lo, long hi)
    {
        DigitsOnly(what, s, true);
        if (!long.TryParse(s, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var v) || v < lo || v > hi)
            throw Bad($"{what} = {s} is outside {lo}..{hi}");
        return v;
    }

    private ulong WholeUnsigned(string what, string s)
    {
        DigitsOnly(what, s, false);
        if (!ulong.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out var v)) throw Bad($"{what} = {s} does not fit in 64 bits");
        return v;
    }

    private long Integer(string key, long lo, long hi) => Whole($"metadata '{key}'", Text(key), lo, hi);

    private int Choice(string key, params string[] words)
    {
        var s = Text(key);
        var i = Array.IndexOf(words, s);
        if (i < 0) throw Bad($"metadata '{key}' = '{Show(s)}' is not one of {string.Join(", ", words)}");
        return i;
    }

    // strtof over the whole text: leading white space, a decimal number, inf or nan.
    private float Real(string key)
    {
        var s = Text(key);
        var t = s.TrimStart(' ', '\t', '\n', '\v', '\f', '\r');
        var negative = t.StartsWith('-');
        var word = t.TrimStart('+', '-').ToLowerInvariant();
        float v;
        bool ok;
        if (t.Length - word.Length <= 1 && word is "inf" or "infinity" or "nan")
        {
            ok = true;
            v = word == "nan" ? float.NaN : negative ? float.NegativeInfinity : float.PositiveInfinity;
        }
        else
            ok = float.TryParse(t, NumberStyles.AllowLeadingSign | NumberStyles.AllowDecimalPoint | NumberStyles.AllowExponent,
                CultureInfo.InvariantCulture, out v);
        if (s.Length == 0 || !ok) throw Bad($"metadata '{key}' = '{Show(s)}' is not a number");
        return v;
    }
}
