using System.Runtime.InteropServices;
using ILGPU;
using ILGPU.Runtime;
using Mome.Gguf;
using Mome.Ilgpu.Banks;
using Mome.Ilgpu.Model;
using Mome.Ilgpu.Routing;

namespace Mome.Ilgpu;

/// <summary>
/// A memory bank for the ILGPU engine: a `.mome` file read and verified by the managed side (the
/// native loader's checks and messages: checksums, the base model's shape and weights, every
/// count against the file's size), its keys and experts on the model's accelerator. Run it with
/// <c>new IlgpuSession(model, options, bank)</c>. Read-only, apart from the gate threshold.
/// </summary>
public sealed class IlgpuBank : IDisposable
{
    private readonly List<IlgpuMemoryTables> _layers;

    private IlgpuBank(IlgpuModel model, MemoryOptions options, List<IlgpuMemoryTables> layers, string? promptTemplate)
    {
        Model = model;
        Options = options;
        _layers = layers;
        PromptTemplate = promptTemplate;
    }

    public IlgpuModel Model { get; }

    /// <summary>The options the bank was made with (layers resolved).</summary>
    public MemoryOptions Options { get; }

    /// <summary>The prompt its facts were tuned with (from the side file beside the bank), or null.</summary>
    public string? PromptTemplate { get; }

    internal IReadOnlyList<IlgpuMemoryTables> Layers => _layers;

    /// <summary>The prompt of <paramref name="question"/> in <see cref="PromptTemplate"/>, or null.</summary>
    public string? PromptOf(string question) => PromptTemplate?.Replace(BankPromptFile.QuestionMarker, question, StringComparison.Ordinal);

    /// <summary>Loads a bank file made for <paramref name="model"/>; MomeException with the native
    /// engine's code and message for a file the native engine refuses.</summary>
    public static IlgpuBank Load(IlgpuModel model, string path)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentException.ThrowIfNullOrEmpty(path);
        var full = System.IO.Path.GetFullPath(path);
        if (Directory.Exists(full)) throw new MomeException(MomeErrorCode.IoError, $"{full}: is a directory, not a bank file");
        using var file = new MappedFile(full);
        var layout = BankFileReader.Read(file, model.Config, model.Path, () => model.Fingerprint);
        var layers = new List<IlgpuMemoryTables>();
        try
        {
            foreach (var l in layout.Layers) layers.Add(IlgpuMemoryTables.Upload(file, l, layout.Options, model.Accelerator));
            return new IlgpuBank(model, layout.Options, layers, BankPromptFile.Read(full));
        }
        catch
        {
            foreach (var l in layers) l.Dispose();
            throw;
        }
    }

    /// <summary>The gate of memory layer <paramref name="slot"/>.</summary>
    public MemoryGate GetGate(int slot = 0)
    {
        var l = Layer(slot);
        return new MemoryGate(l.GateThreshold, l.Signatures);
    }

    /// <summary>Sets the evidence a route needs ([-1, 1]; <see cref="MemoryGate.Off"/> turns the gate off).</summary>
    public void SetGateThreshold(int slot, float threshold)
    {
        var l = Layer(slot);
        if (!(threshold == MemoryGate.Off || (threshold >= -1.0f && threshold <= 1.0f)))
            throw new MomeException(MomeErrorCode.InvalidArgument, $"gate threshold {CFormat.G(threshold)} is neither in [-1, 1] nor -2 (off)");
        l.GateThreshold = threshold;
    }

    private IlgpuMemoryTables Layer(int slot) => slot >= 0 && slot < _layers.Count
        ? _layers[slot]
        : throw new MomeException(MomeErrorCode.OutOfRange, $"memory layer slot {slot} is outside 0..{_layers.Count - 1}");

    public void Dispose()
    {
        foreach (var l in _layers) l.Dispose();
        _layers.Clear();
    }
}

/// <summary>One memory layer of an <see cref="IlgpuBank"/>: W_q, the centre and the gate's
/// signatures on the host (queries are made there, as in the native session); the router's keys,
/// the gate's signatures (as a flat router's keys), A and B as F32 on the accelerator, uploaded
/// once.</summary>
internal sealed unsafe class IlgpuMemoryTables : IDisposable
{
    private IlgpuMemoryTables(int block, float[] wq, float[] centre, float[] gate, float threshold,
        MemoryBuffer1D<float, Stride1D.Dense> a, MemoryBuffer1D<float, Stride1D.Dense> b, IlgpuRouterKeys router, IlgpuRouterKeys? gateKeys)
    {
        Router = router;
        GateKeys = gateKeys;
        Block = block;
        Wq = wq;
        Centre = centre;
        GateSignatures = gate;
        GateThreshold = threshold;
        A = a;
        B = b;
    }

    public int Block { get; }
    public float[] Wq { get; }
    public float[] Centre { get; }
    public float[] GateSignatures { get; }
    public float GateThreshold { get; set; }

    public MemoryBuffer1D<float, Stride1D.Dense> A { get; }
    public MemoryBuffer1D<float, Stride1D.Dense> B { get; }

    /// <summary>The bank's router over this layer's keys, on the accelerator.</summary>
    public IlgpuRouterKeys Router { get; }

    /// <summary>The gate's unit signatures as a flat top-1 router, or null when there are none.</summary>
    public IlgpuRouterKeys? GateKeys { get; }

    public int KeyDim => Wq.Length / Centre.Length;
    public long Signatures => GateSignatures.Length / KeyDim;

    public static IlgpuMemoryTables Upload(MappedFile file, BankLayerLayout l, MemoryOptions p, Accelerator accelerator)
    {
        float[] F32(BankTable t, TensorType type) => Widening.ToF32(Bytes(file, t), type, Count(t));
        var owned = new List<IDisposable>();
        try
        {
            var a = accelerator.Allocate1D(F32(l.A, p.WeightType));
            owned.Add(a);
            var b = accelerator.Allocate1D(F32(l.B, p.WeightType));
            owned.Add(b);
            var wq = F32(l.Wq, TensorType.F32);
            var centre = F32(l.Centre, TensorType.F32);
            var gate = F32(l.Gate, TensorType.F32);
            var router = new IlgpuRouterKeys(new RouterSpec(p.Router, p.WeightType, p.Experts, p.KeyDim, Bytes(file, l.Keys).ToArray(), p.TopK, p.Temperature),
                accelerator);
            owned.Add(router);
            var signatures = gate.Length / p.KeyDim;
            var gateKeys = signatures == 0 ? null
                : new IlgpuRouterKeys(new RouterSpec(RouterKind.Flat, TensorType.F32, signatures, p.KeyDim, MemoryMarshal.AsBytes(gate.AsSpan()).ToArray(), 1), accelerator);
            return new IlgpuMemoryTables(l.Block, wq, centre, gate, l.GateThreshold, a, b, router, gateKeys);
        }
        catch
        {
            foreach (var o in owned) o.Dispose();
            throw;
        }
    }

    private static int Count(BankTable t)
    {
        long n = 1;
        foreach (var d in t.Shape) n *= d;
        return n <= int.MaxValue ? (int)n
            : throw new MomeException(MomeErrorCode.Unsupported, $"a bank table of {n} values is more than the ILGPU engine holds ({int.MaxValue})");
    }

    private static ReadOnlySpan<byte> Bytes(MappedFile file, BankTable t) =>
        t.Size <= int.MaxValue ? file.Span(t.Offset, t.Size)
            : throw new MomeException(MomeErrorCode.Unsupported, $"a bank table of {t.Size} bytes is more than the ILGPU engine holds (2 GiB)");

    public void Dispose()
    {
        A.Dispose();
        B.Dispose();
        Router.Dispose();
        GateKeys?.Dispose();
    }
}
