using System.Text;
using System.Text.Json.Nodes;

namespace Mome.Tests;

/// <summary>Bank file headers edited one field at a time (the data and checksums kept as
/// saved): each hostile or malformed field is refused with a message naming the file and the
/// field, and nothing is read from where a truncated, wrapped or clamped value would point.</summary>
public sealed class BankFileHeaderTests
{
    private string _dir = "";
    private MomeModel _model = null!;
    private string _bankPath = "";

    private static readonly MemoryOptions Small = new() { Experts = 16, KeyDim = 8, TopK = 4, Rank = 2, Layers = [1] };

    [SetUp]
    public void SetUp()
    {
        _dir = TestPaths.NewTempDir();
        var path = Path.Combine(_dir, "m.gguf");
        MomeModel.CreateSynthetic(SyntheticModelConfig.Preset("tiny"), path, seed: 1);
        _model = MomeModel.Open(path);
        _bankPath = Path.Combine(_dir, "bank.mome");
        using var bank = MemoryBank.Create(_model, Small);
        bank.Save(_bankPath);
    }

    [TearDown]
    public void TearDown()
    {
        _model.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    // The saved bank with its header changed by `edit`, written to a file of its own.
    private string Edited(string name, Action<JsonObject> edit)
    {
        var (header, dataStart) = MemoryBankTests.ReadHeader(_bankPath);
        edit(header);
        var text = header.ToJsonString();
        while (text.Length % 8 != 0) text += " ";
        var bytes = File.ReadAllBytes(_bankPath);
        var json = Encoding.UTF8.GetBytes(text);
        var path = Path.Combine(_dir, name);
        File.WriteAllBytes(path, [.. BitConverter.GetBytes((ulong)json.Length), .. json, .. bytes.AsSpan((int)dataStart)]);
        return path;
    }

    private static JsonObject Meta(JsonObject header) => header["__metadata__"]!.AsObject();

    private MomeException Refused(string name, Action<JsonObject> edit, MomeErrorCode code, params string[] fragments)
    {
        var path = Edited(name, edit);
        var e = Assert.Throws<MomeException>(() => MemoryBank.Load(_model, path).Dispose(), name)!;
        Assert.That(e.Code, Is.EqualTo(code), e.Message);
        Assert.That(e.Message, Does.Contain(path), "the message names the file");
        foreach (var f in fragments) Assert.That(e.Message, Does.Contain(f));
        return e;
    }

    private static long Begin(JsonObject header, string tensor) => (long)header[tensor]!["data_offsets"]![0]!;

    private static long End(JsonObject header, string tensor) => (long)header[tensor]!["data_offsets"]![1]!;

    [Test]
    public void TheUneditedHeaderLoads()
    {
        using var bank = MemoryBank.Load(_model, Edited("same.mome", _ => { }));
        Assert.That(bank.Options.Experts, Is.EqualTo(Small.Experts));
        Assert.That(bank.Options.Rank, Is.EqualTo(Small.Rank));
    }

    [Test]
    public void FractionalDataOffsetsAreRefused()
    {
        // Shifted by half a byte, each table still spans its size and would be truncated back
        // onto its own bytes (checksum and all) if fractions were accepted.
        Refused("fraction.mome", h =>
        {
            var begin = Begin(h, "layers.0.centre");
            var end = End(h, "layers.0.centre");
            h["layers.0.centre"]!["data_offsets"] = new JsonArray(begin + 0.5, end + 0.5);
        }, MomeErrorCode.FormatError, "layers.0.centre", "not whole numbers");
        Refused("fraction_end.mome", h => h["layers.0.wq"]!["data_offsets"] = new JsonArray(12.5, End(h, "layers.0.wq") + 12.5),
            MomeErrorCode.FormatError, "layers.0.wq", "12.5");
    }

    [Test]
    public void DataOffsetsOutsideTheDataAreRefused()
    {
        Refused("negative.mome", h => h["layers.0.a"]!["data_offsets"] = new JsonArray(-8, End(h, "layers.0.a") - Begin(h, "layers.0.a") - 8),
            MomeErrorCode.FormatError, "layers.0.a", "does not fit");
        Refused("past.mome", h => h["layers.0.b"]!["data_offsets"] = new JsonArray(1L << 40, (1L << 40) + End(h, "layers.0.b") - Begin(h, "layers.0.b")),
            MomeErrorCode.FormatError, "layers.0.b", "does not fit");
        Refused("three.mome", h => h["layers.0.b"]!["data_offsets"] = new JsonArray(0, 1, 2), MomeErrorCode.FormatError,
            "layers.0.b", "no valid data_offsets");
        Refused("strings.mome", h => h["layers.0.b"]!["data_offsets"] = new JsonArray("0", "8"), MomeErrorCode.FormatError,
            "no valid data_offsets");
    }

    [Test]
    public void UnsupportedOrMalformedVersionIsRefused()
    {
        Refused("v3.mome", h => Meta(h)["mome.version"] = "3", MomeErrorCode.Unsupported, "bank file version 3 is not supported");
        Refused("v1.0.mome", h => Meta(h)["mome.version"] = "1.0", MomeErrorCode.FormatError, "mome.version", "not a whole number");
        Refused("nover.mome", h => Meta(h).Remove("mome.version"), MomeErrorCode.FormatError, "'mome.version' is missing");
    }

    [Test]
    public void AVersionOneFileLoadsWithTheGateOffAndAVersionTwoFileNeedsItsGate()
    {
        using (var v1 = MemoryBank.Load(_model, Edited("v1.mome", h =>
        {
            Meta(h)["mome.version"] = "1";
            Meta(h).Remove("mome.gate_threshold.0");
            Meta(h).Remove("mome.crc32c.layers.0.gate");
            h.Remove("layers.0.gate");
        })))
            Assert.That(v1.GetGate(), Is.EqualTo(new MemoryGate(MemoryGate.Off, 0)));
        Refused("nogate.mome", h => h.Remove("layers.0.gate"), MomeErrorCode.FormatError, "layers.0.gate", "missing");
        Refused("gatedim.mome", h => h["layers.0.gate"]!["shape"] = new JsonArray(0, 7), MomeErrorCode.FormatError, "layers.0.gate", "shape");
        Refused("gaterows.mome", h => h["layers.0.gate"]!["shape"] = new JsonArray(1L << 40, 8), MomeErrorCode.FormatError, "layers.0.gate", "shape");
        Refused("gatethreshold.mome", h => Meta(h)["mome.gate_threshold.0"] = "7", MomeErrorCode.FormatError, "mome.gate_threshold.0");
        Refused("gatetype.mome", h => h["layers.0.gate"]!["dtype"] = "F16", MomeErrorCode.FormatError, "layers.0.gate", "F32");
    }

    [Test]
    public void TooManyOrMalformedLayersAreRefused()
    {
        Refused("nine.mome", h => Meta(h)["mome.layers"] = "0,1,0,1,0,1,0,1,0", MomeErrorCode.FormatError, "too many memory layers");
        Refused("word.mome", h => Meta(h)["mome.layers"] = "1,x", MomeErrorCode.FormatError, "mome.layers", "'x' is not a whole number");
        Refused("empty.mome", h => Meta(h)["mome.layers"] = "", MomeErrorCode.FormatError, "mome.layers", "not a whole number");
        Refused("range.mome", h => Meta(h)["mome.layers"] = "7", MomeErrorCode.FormatError, "invalid bank parameters", "layer 7 is out of range");
    }

    [Test]
    public void HostileParametersAreRefusedNotWrapped()
    {
        // 2^32 + 2 would wrap to a rank of 2, this very bank's: it must be refused, not loaded.
        Refused("rank.mome", h => Meta(h)["mome.rank"] = "4294967298", MomeErrorCode.FormatError, "mome.rank", "4294967298", "outside");
        Refused("topk.mome", h => Meta(h)["mome.top_k"] = "4294967300", MomeErrorCode.FormatError, "mome.top_k", "outside");
        Refused("huge.mome", h => Meta(h)["mome.n_experts"] = "99999999999999999999", MomeErrorCode.FormatError, "mome.n_experts", "outside");
        Refused("int32.mome", h => Meta(h)["mome.n_experts"] = "4294967296", MomeErrorCode.FormatError, "n_experts = 4294967296", "int32");
        Refused("negk.mome", h => Meta(h)["mome.top_k"] = "-5", MomeErrorCode.FormatError, "top_k = -5");
        Refused("plus.mome", h => Meta(h)["mome.key_dim"] = "+8", MomeErrorCode.FormatError, "mome.key_dim", "not a whole number");
        Refused("temp.mome", h => Meta(h)["mome.temperature"] = "nan", MomeErrorCode.FormatError, "temperature");
        Refused("alpha.mome", h => Meta(h)["mome.alpha"] = "1x", MomeErrorCode.FormatError, "mome.alpha", "not a number");
        Refused("seed.mome", h => Meta(h)["mome.seed"] = "-1", MomeErrorCode.FormatError, "mome.seed", "not a whole number");
        Refused("bigseed.mome", h => Meta(h)["mome.seed"] = "18446744073709551616", MomeErrorCode.FormatError, "mome.seed", "64 bits");
    }

    [Test]
    public void UnknownEnumerationWordsAreRefused()
    {
        Refused("routing.mome", h => Meta(h)["mome.routing"] = "diagonal", MomeErrorCode.FormatError, "mome.routing", "'diagonal'", "sequence, token");
        Refused("router.mome", h => Meta(h)["mome.router"] = "hashed", MomeErrorCode.FormatError, "mome.router", "flat, product");
        Refused("wtype.mome", h => Meta(h)["mome.weight_type"] = "Q4_0", MomeErrorCode.FormatError, "mome.weight_type", "F32, F16, BF16");
    }

    [Test]
    public void TheLargestSeedRoundTrips()
    {
        var path = Path.Combine(_dir, "seed.mome");
        using (var bank = MemoryBank.Create(_model, Small with { Seed = ulong.MaxValue }))
            bank.Save(path);
        using var loaded = MemoryBank.Load(_model, path);
        Assert.That(loaded.Options.Seed, Is.EqualTo(ulong.MaxValue));
    }

    [Test]
    public void TensorTableMismatchesAreRefused()
    {
        Refused("dtype.mome", h => h["layers.0.a"]!["dtype"] = "F16", MomeErrorCode.FormatError, "'layers.0.a' must have dtype F32");
        Refused("shape.mome", h => h["layers.0.keys"]!["shape"] = new JsonArray(8, 16), MomeErrorCode.FormatError,
            "'layers.0.keys' has a shape that does not match");
        Refused("rank1.mome", h => h["layers.0.b"]!["shape"] = new JsonArray(16, 2), MomeErrorCode.FormatError, "'layers.0.b' has a shape");
        Refused("missing.mome", h => h.Remove("layers.0.b"), MomeErrorCode.FormatError, "tensor 'layers.0.b' is missing");
        Refused("extra.mome", h => h["layers.1.a"] = h["layers.0.a"]!.DeepClone(), MomeErrorCode.FormatError,
            "tensors that are not part of a bank");
        Refused("notobj.mome", h => h["layers.0.wq"] = 3, MomeErrorCode.FormatError, "tensor 'layers.0.wq' is missing");
    }

    [Test]
    public void DeeplyNestedJsonIsRefused()
    {
        JsonNode deep = new JsonArray();
        for (var i = 0; i < 40; i++) deep = new JsonArray(deep);
        Refused("deep.mome", h => h["deep"] = deep, MomeErrorCode.FormatError, "malformed JSON", "nested too deeply");
        // Just inside the limit the JSON parses, and the stray member is what is refused.
        JsonNode shallow = new JsonArray();
        for (var i = 0; i < 30; i++) shallow = new JsonArray(shallow);
        Refused("shallow.mome", h => h["deep"] = shallow, MomeErrorCode.FormatError, "tensors that are not part of a bank");
    }
}
