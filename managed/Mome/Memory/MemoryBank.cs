using Mome.Interop;
using Mome.Native;

namespace Mome;

/// <summary>
/// A memory bank: the expert tables of one or more memory layers, attached to the model it
/// was made for. Run it inside the model with <c>new MomeSession(model, new SessionOptions
/// { Memory = bank })</c>.
/// </summary>
public sealed unsafe partial class MemoryBank : IDisposable
{
    private readonly SafeBankHandle _handle;

    private MemoryBank(SafeBankHandle handle, MomeModel model)
    {
        _handle = handle;
        Model = model;
        Options = ReadOptions();
    }

    public MomeModel Model { get; }

    /// <summary>The options the bank was made with (layers resolved).</summary>
    public MemoryOptions Options { get; }

    internal SafeBankHandle Handle => _handle;

    /// <summary>A new bank with random keys, router and A, and B = 0 (the model's outputs are
    /// unchanged until the bank is tuned).</summary>
    public static MemoryBank Create(MomeModel model, MemoryOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        options ??= new MemoryOptions();
        if (options.Layers.Count > MomeConstants.MOME_MAX_MEMORY_LAYERS)
            throw new ArgumentException($"at most {MomeConstants.MOME_MAX_MEMORY_LAYERS} memory layers", nameof(options));
        var p = new MomeBankParams { StructSize = (uint)sizeof(MomeBankParams) };
        Status.Check(NativeMethods.mome_bank_default_params(&p));
        p.NLayers = options.Layers.Count;
        for (var i = 0; i < options.Layers.Count; i++) p.Layers[i] = options.Layers[i];
        p.NExperts = options.Experts;
        p.KeyDim = options.KeyDim;
        p.Rank = options.Rank;
        p.TopK = options.TopK;
        p.Temperature = options.Temperature;
        p.Alpha = options.Alpha;
        p.Routing = (MomeRoutingMode)(int)options.Routing;
        p.Router = (MomeRouterKind)(int)options.Router;
        p.WeightType = (MomeTensorType)(int)options.WeightType;
        p.Seed = options.Seed;
        var parameters = p; // captured by the lambda; p itself stays a stack local with fixed buffers
        var handle = SafeBankHandle.Create(model.Handle, m =>
        {
            IntPtr bank;
            var local = parameters;
            Status.Check(NativeMethods.mome_bank_create(m, &local, &bank));
            return bank;
        });
        return new MemoryBank(handle, model);
    }

    /// <summary>Loads a bank file made for <paramref name="model"/>; refuses corrupted files and
    /// banks of other models with a message that says which.</summary>
    public static MemoryBank Load(MomeModel model, string path)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentException.ThrowIfNullOrEmpty(path);
        var full = Path.GetFullPath(path);
        if (Directory.Exists(full)) throw new MomeException(MomeErrorCode.IoError, $"{full}: is a directory, not a bank file");
        var utf8 = System.Text.Encoding.UTF8.GetBytes(full + "\0");
        var handle = SafeBankHandle.Create(model.Handle, m =>
        {
            IntPtr bank;
            fixed (byte* f = utf8)
                Status.Check(NativeMethods.mome_bank_load(m, f, &bank));
            return bank;
        });
        return new MemoryBank(handle, model) { PromptTemplate = BankPromptFile.Read(full) };
    }

    /// <summary>Saves crash-safely: a previous file at <paramref name="path"/> survives any failure.
    /// The <see cref="PromptTemplate"/> goes to its side file once the bank is written.</summary>
    public void Save(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var full = Path.GetFullPath(path);
        var utf8 = System.Text.Encoding.UTF8.GetBytes(full + "\0");
        _handle.Use(b =>
        {
            fixed (byte* f = utf8)
                Status.Check(NativeMethods.mome_bank_save(b, f));
            return 0;
        });
        BankPromptFile.Write(full, PromptTemplate);
    }

    /// <summary>Bytes of the expert tables.</summary>
    public ulong SizeBytes => _handle.Use(b =>
    {
        ulong n;
        Status.Check(NativeMethods.mome_bank_size_bytes(b, &n));
        return n;
    });

    /// <summary>Expert <paramref name="expert"/> of memory layer <paramref name="slot"/> as F32:
    /// A [rank x n_embd] and B transposed [rank x n_embd].</summary>
    public (float[] A, float[] B) GetExpert(int slot, long expert)
    {
        var n = Options.Rank * (int)Model.Config.EmbeddingLength;
        var a = new float[n];
        var b = new float[n];
        fixed (float* pa = a)
        fixed (float* pb = b)
        {
            var (ap, bp) = ((IntPtr)pa, (IntPtr)pb);
            _handle.Use(h =>
            {
                Status.Check(NativeMethods.mome_bank_get_expert(h, slot, expert, (float*)ap, (float*)bp));
                return 0;
            });
        }
        return (a, b);
    }

    /// <summary>Overwrites an expert's A and/or B (null keeps a table); rounded to the bank's
    /// storage type. Not thread-safe with sessions running the bank.</summary>
    public void SetExpert(int slot, long expert, float[]? a, float[]? b)
    {
        var n = Options.Rank * (int)Model.Config.EmbeddingLength;
        if (a is not null && a.Length != n) throw new ArgumentException($"A must hold rank x n_embd = {n} floats", nameof(a));
        if (b is not null && b.Length != n) throw new ArgumentException($"B must hold rank x n_embd = {n} floats", nameof(b));
        fixed (float* pa = a)
        fixed (float* pb = b)
        {
            var (ap, bp) = ((IntPtr)pa, (IntPtr)pb);
            _handle.Use(h =>
            {
                Status.Check(NativeMethods.mome_bank_set_expert(h, slot, expert, (float*)ap, (float*)bp));
                return 0;
            });
        }
    }

    /// <summary>The routing centre of a memory layer (subtracted from its input before W_q).</summary>
    public float[] GetCentre(int slot = 0)
    {
        var centre = new float[Model.Config.EmbeddingLength];
        fixed (float* c = centre)
        {
            var cp = (IntPtr)c;
            _handle.Use(h =>
            {
                Status.Check(NativeMethods.mome_bank_get_centre(h, slot, (float*)cp));
                return 0;
            });
        }
        return centre;
    }

    public void SetCentre(int slot, float[] centre)
    {
        ArgumentNullException.ThrowIfNull(centre);
        if (centre.Length != Model.Config.EmbeddingLength) throw new ArgumentException($"the centre needs n_embd = {Model.Config.EmbeddingLength} values", nameof(centre));
        fixed (float* c = centre)
        {
            var cp = (IntPtr)c;
            _handle.Use(h =>
            {
                Status.Check(NativeMethods.mome_bank_set_centre(h, slot, (float*)cp));
                return 0;
            });
        }
    }

    /// <summary>The mean of the memory layer's input over a question's tokens (one-layer banks).</summary>
    public float[] QuestionMean(ReadOnlySpan<int> tokens, int threads = 0)
    {
        var mean = new float[Model.Config.EmbeddingLength];
        fixed (int* t = tokens)
        fixed (float* m = mean)
        {
            var (tp, mp, n) = ((IntPtr)t, (IntPtr)m, tokens.Length);
            _handle.Use(h =>
            {
                Status.Check(NativeMethods.mome_bank_question_mean(h, (int*)tp, n, (float*)mp, threads));
                return 0;
            });
        }
        return mean;
    }

    /// <summary>One fact's route, expert gradients and loss (mome_bank_fact_backward): with
    /// <paramref name="route"/> the fact takes that cached route; with
    /// <paramref name="routerGradients"/> the gradients of W_q and the route's keys come too.</summary>
    /// <paramref name="prefix"/> (2 x tokens x n_embd), when given, holds the frozen layers'
    /// outputs kept from an earlier call; <paramref name="prefixOut"/> receives them.
    /// With <paramref name="device"/> (a CUDA session of the model) the step runs on its GPU.
    internal FactStep FactBackward(int[] tokens, int answerStart, (int[] Indices, float[] Weights)? route, bool routerGradients, int threads,
        float[]? prefix = null, float[]? prefixOut = null, MomeSession? device = null)
    {
        var prefixLength = 2L * tokens.Length * Model.Config.EmbeddingLength;
        if ((prefix is not null && prefix.Length != prefixLength) || (prefixOut is not null && prefixOut.Length != prefixLength))
            throw new ArgumentException($"a fact's prefix holds 2 x {tokens.Length} tokens x n_embd = {prefixLength} values");
        var k = Options.TopK;
        var n = Options.Rank * (int)Model.Config.EmbeddingLength;
        // A bank that routes per token gives each token its own route: room for them all.
        var entries = Options.Routing == RoutingMode.Token ? tokens.Length * k : k;
        var step = new FactStep(new int[entries], new float[entries], new float[(long)entries * n], new float[(long)entries * n],
            routerGradients ? new float[Options.KeyDim * Model.Config.EmbeddingLength] : null,
            routerGradients ? new float[k * Options.KeyDim] : null) { Experts = new int[entries] };
        MomeFactResult result;
        int distinct;
        fixed (int* t = tokens)
        fixed (int* ri = route?.Indices)
        fixed (float* rw = route?.Weights)
        fixed (int* i = step.Indices)
        fixed (float* w = step.Weights)
        fixed (float* a = step.DA)
        fixed (float* b = step.DB)
        fixed (float* q = step.DWq)
        fixed (float* kk = step.DKeys)
        fixed (float* pi = prefix)
        fixed (float* po = prefixOut)
        fixed (int* ex = step.Experts)
        {
            var fact = new MomeFactDesc
            {
                StructSize = (uint)sizeof(MomeFactDesc),
                Tokens = t, NTokens = tokens.Length, AnswerStart = answerStart, RouteIndices = ri, RouteWeights = rw, Prefix = pi, PrefixOut = po,
            };
            var grads = new MomeFactGrads { StructSize = (uint)sizeof(MomeFactGrads), Indices = i, Weights = w, Da = a, Db = b, Dwq = q, Dkeys = kk, Capacity = entries, Experts = ex };
            var (fp, gp) = ((IntPtr)(&fact), (IntPtr)(&grads));
            (MomeFactResult, int) Run(IntPtr bank, IntPtr session)
            {
                ((MomeFactDesc*)fp)->Session = session;
                Status.Check(NativeMethods.mome_bank_fact_backward(bank, (MomeFactDesc*)fp, (MomeFactGrads*)gp, threads));
                return (((MomeFactGrads*)gp)->Result, ((MomeFactGrads*)gp)->NExperts);
            }
            (result, distinct) = _handle.Use(h => device is null ? Run(h, IntPtr.Zero) : device.Handle.Use(s => Run(h, s)));
        }
        return step with { Loss = result.Loss, Correct = result.NCorrect, AnswerTokens = result.NAnswerTokens, ExpertCount = distinct };
    }

    /// <summary>The router of memory layer <paramref name="slot"/> (0 .. Layers.Count-1).</summary>
    public BankRouter Router(int slot = 0)
    {
        if (slot < 0 || slot >= Options.Layers.Count)
            throw new ArgumentOutOfRangeException(nameof(slot), $"memory layer slot {slot} is outside 0..{Options.Layers.Count - 1}");
        return new BankRouter(this, slot);
    }

    public void Dispose() => _handle.Dispose();

    private MemoryOptions ReadOptions() => _handle.Use(b =>
    {
        var p = new MomeBankParams { StructSize = (uint)sizeof(MomeBankParams) };
        Status.Check(NativeMethods.mome_bank_get_params(b, &p));
        var layers = new int[p.NLayers];
        for (var i = 0; i < layers.Length; i++) layers[i] = p.Layers[i];
        return new MemoryOptions
        {
            Layers = layers, Experts = p.NExperts, KeyDim = p.KeyDim, Rank = p.Rank, TopK = p.TopK,
            Temperature = p.Temperature, Alpha = p.Alpha, Routing = (RoutingMode)(int)p.Routing,
            Router = (RouterKind)(int)p.Router, WeightType = (TensorType)(int)p.WeightType, Seed = p.Seed,
        };
    });
}

/// <summary>A fact's route (indices, weights), the gradients of its experts in route order,
/// its loss and how many answer tokens are already the greedy choice.</summary>
internal sealed record FactStep(int[] Indices, float[] Weights, float[] DA, float[] DB, float[]? DWq = null, float[]? DKeys = null,
    double Loss = 0, int Correct = 0, int AnswerTokens = 0)
{
    /// <summary>The distinct routed experts, in the order of DA and DB's row blocks (the first ExpertCount).</summary>
    public int[] Experts { get; init; } = [];
    public int ExpertCount { get; init; }

    public bool Exact => Correct == AnswerTokens;
}

/// <summary>One memory layer's router: top-k experts and softmax weights for projected queries.</summary>
public sealed unsafe class BankRouter
{
    private readonly MemoryBank _bank;
    private readonly int _slot;

    internal BankRouter(MemoryBank bank, int slot)
    {
        _bank = bank;
        _slot = slot;
    }

    /// <summary>Key rows: a flat router has one row of KeyDim per expert; a product router
    /// 2 x sqrt(Experts) rows of KeyDim / 2 (the first sub-key table, then the second).</summary>
    public long KeyRows => _bank.Options.Router == RouterKind.Product ? 2 * SubKeys : _bank.Options.Experts;

    public int KeyRowLength => _bank.Options.Router == RouterKind.Product ? (int)_bank.Options.KeyDim / 2 : (int)_bank.Options.KeyDim;

    /// <summary>sqrt(Experts): the rows of each sub-key table of a product router.</summary>
    public long SubKeys => (long)Math.Round(Math.Sqrt(_bank.Options.Experts));

    /// <summary>The query projection W_q [KeyDim x n_embd], row-major.</summary>
    public float[] GetQueryProjection()
    {
        var wq = new float[_bank.Options.KeyDim * _bank.Model.Config.EmbeddingLength];
        fixed (float* p = wq)
        {
            var pp = (IntPtr)p;
            _bank.Handle.Use(b =>
            {
                Status.Check(NativeMethods.mome_bank_get_wq(b, _slot, (float*)pp));
                return 0;
            });
        }
        return wq;
    }

    public void SetQueryProjection(ReadOnlySpan<float> wq)
    {
        if (wq.Length != _bank.Options.KeyDim * _bank.Model.Config.EmbeddingLength)
            throw new ArgumentException($"W_q needs KeyDim x n_embd = {_bank.Options.KeyDim * _bank.Model.Config.EmbeddingLength} values", nameof(wq));
        fixed (float* p = wq)
        {
            var pp = (IntPtr)p;
            _bank.Handle.Use(b =>
            {
                Status.Check(NativeMethods.mome_bank_set_wq(b, _slot, (float*)pp));
                return 0;
            });
        }
    }

    /// <summary>Key rows [first, first + count) as F32.</summary>
    public float[] GetKeyRows(long first, int count)
    {
        var rows = new float[(long)count * KeyRowLength];
        fixed (float* p = rows)
        {
            var pp = (IntPtr)p;
            _bank.Handle.Use(b =>
            {
                Status.Check(NativeMethods.mome_bank_get_key_rows(b, _slot, first, count, (float*)pp));
                return 0;
            });
        }
        return rows;
    }

    /// <summary>Overwrites whole key rows from <paramref name="first"/> (rounded to the bank's type).</summary>
    public void SetKeyRows(long first, ReadOnlySpan<float> rows)
    {
        if (rows.IsEmpty || rows.Length % KeyRowLength != 0)
            throw new ArgumentException($"key rows are {KeyRowLength} values each", nameof(rows));
        var count = rows.Length / KeyRowLength;
        fixed (float* p = rows)
        {
            var pp = (IntPtr)p;
            _bank.Handle.Use(b =>
            {
                Status.Check(NativeMethods.mome_bank_set_key_rows(b, _slot, first, count, (float*)pp));
                return 0;
            });
        }
    }

    /// <summary>Routes queries [n x KeyDim]: indices and weights [n x TopK], best first.</summary>
    public (int[] Indices, float[] Weights) Route(ReadOnlySpan<float> queries, int threads = 0)
    {
        var keyDim = (int)_bank.Options.KeyDim;
        if (queries.IsEmpty || queries.Length % keyDim != 0)
            throw new ArgumentException($"queries must be a non-empty multiple of the key dimension {keyDim}", nameof(queries));
        var n = queries.Length / keyDim;
        var k = _bank.Options.TopK;
        var indices = new int[n * k];
        var weights = new float[n * k];
        fixed (float* q = queries)
        fixed (int* i = indices)
        fixed (float* w = weights)
        {
            var (qp, ip, wp) = ((IntPtr)q, (IntPtr)i, (IntPtr)w);
            _bank.Handle.Use(b =>
            {
                Status.Check(NativeMethods.mome_bank_route(b, _slot, (float*)qp, n, (int*)ip, (float*)wp, threads));
                return 0;
            });
        }
        return (indices, weights);
    }
}
