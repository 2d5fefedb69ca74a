using Mome.Engines;
using Mome.Interop;
using Mome.Native;

namespace Mome;

/// <summary>Options of a <see cref="MomeSession"/>.</summary>
public sealed record SessionOptions
{
    /// <summary>Positions each sequence's cache holds (1 .. 2^24); 0 means the model's training
    /// context capped at 4096 positions (a file's context_length alone never sizes a huge cache).
    /// <see cref="MomeSession.ContextLength"/> says what a session got.</summary>
    public int ContextLength { get; init; }

    /// <summary>Sequences held at once (ids 0 .. MaxSequences-1).</summary>
    public int MaxSequences { get; init; } = 1;

    /// <summary>CPU threads; 0 means one per core.</summary>
    public int Threads { get; init; }


    /// <summary>A memory bank to run inside the model (null: the base model alone).</summary>
    public MemoryBank? Memory { get; init; }

    /// <summary>Where the forward pass runs: <see cref="DeviceBackend.Cpu"/> (the default),
    /// <see cref="DeviceBackend.CpuReference"/> (the plain reference kernels, to check the fast
    /// paths) or <see cref="DeviceBackend.Cuda"/> on CUDA device <see cref="Device"/> (weights and
    /// KV cache on the device; needs libmome_cuda; a memory bank is copied to the device when the
    /// session is made).</summary>
    public DeviceBackend Backend { get; init; } = DeviceBackend.Cpu;

    /// <summary>The device of <see cref="Backend"/>: 0 = the first GPU for CUDA; the CPU backends
    /// have device 0 only.</summary>
    public int Device { get; init; }

    /// <summary>Options for CUDA device <paramref name="cudaDevice"/>, or the CPU when it is null.</summary>
    public static SessionOptions OnDevice(int? cudaDevice) =>
        cudaDevice is { } d ? new SessionOptions { Backend = DeviceBackend.Cuda, Device = d } : new SessionOptions();
}

/// <summary>
/// The frozen model's forward pass over a KV cache holding one or more sequences. Not
/// thread-safe: use one session per thread.
/// </summary>
public sealed unsafe class MomeSession : IInferenceSession
{
    private readonly SafeSessionHandle _handle;

    public MomeSession(MomeModel model, SessionOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        options ??= new SessionOptions();
        if (!Enum.IsDefined(options.Backend))
            throw new ArgumentException($"unknown backend {(int)options.Backend}", nameof(options));
        var p = new MomeSessionParams { StructSize = (uint)sizeof(MomeSessionParams) };
        Status.Check(NativeMethods.mome_session_default_params(&p));
        p.NCtx = options.ContextLength;
        p.NSeqMax = options.MaxSequences;
        p.NThreads = options.Threads;
        p.Backend = (MomeBackend)(int)options.Backend;
        p.Device = options.Device;
        if (options.Memory is { } bank && !ReferenceEquals(bank.Model, model))
            throw new ArgumentException("the memory bank was made for another MomeModel instance", nameof(options));
        _handle = SafeSessionHandle.Create(model.Handle, p, options.Memory?.Handle);
        Model = model;
        VocabSize = checked((int)model.Config.VocabSize);
        ContextLength = _handle.Use(h =>
        {
            int n;
            Status.Check(NativeMethods.mome_session_context_length(h, &n));
            return n;
        });
    }

    public MomeModel Model { get; }

    internal SafeSessionHandle Handle => _handle;

    public int VocabSize { get; }

    /// <summary>Positions each sequence's cache holds.</summary>
    public int ContextLength { get; }

    /// <summary>
    /// Evaluates tokens of one or more sequences; each sequence's tokens must continue at its
    /// current length. Returns VocabSize logits per token whose <paramref name="wantLogits"/>
    /// is true (by default only the last token), in batch order. On error nothing changes;
    /// <paramref name="cancellationToken"/> stops the native forward pass between layers
    /// (OperationCanceledException), also leaving the session as it was.
    /// </summary>
    public float[] Decode(ReadOnlySpan<int> tokens, ReadOnlySpan<int> positions, ReadOnlySpan<int> sequenceIds,
        ReadOnlySpan<bool> wantLogits = default, CancellationToken cancellationToken = default)
    {
        SequenceBatch.CheckShape(tokens, positions, sequenceIds, wantLogits);
        var rows = 1;
        byte[]? want = null;
        if (!wantLogits.IsEmpty)
        {
            want = new byte[tokens.Length];
            rows = 0;
            for (var i = 0; i < want.Length; i++)
            {
                want[i] = wantLogits[i] ? (byte)1 : (byte)0;
                rows += want[i];
            }
        }
        var logits = new float[(long)rows * VocabSize];
        fixed (int* t = tokens)
        fixed (int* p = positions)
        fixed (int* s = sequenceIds)
        fixed (byte* w = want)
        fixed (float* l = logits)
        {
            var batch = new MomeBatch { StructSize = (uint)sizeof(MomeBatch), NTokens = tokens.Length, Tokens = t, Positions = p, SeqIds = s, WantLogits = w };
            var tp = (IntPtr)(&batch);
            var lp = (IntPtr)l;
            using var abort = NativeAbort.Scope(cancellationToken);
            _handle.Use(h =>
            {
                Status.Check(NativeMethods.mome_session_decode(h, (MomeBatch*)tp, (float*)lp, (ulong)logits.LongLength));
                return 0;
            });
        }
        return logits;
    }

    /// <summary>Appends <paramref name="tokens"/> to sequence <paramref name="sequence"/> and
    /// returns the logits of every token (<paramref name="allLogits"/>) or of the last.</summary>
    public float[] Evaluate(ReadOnlySpan<int> tokens, int sequence = 0, bool allLogits = false,
        CancellationToken cancellationToken = default)
    {
        var (positions, ids, want) = SequenceBatch.Continue(SequenceLength(sequence), tokens.Length, sequence, allLogits);
        return Decode(tokens, positions, ids, want, cancellationToken);
    }

    public int SequenceLength(int sequence) => _handle.Use(h =>
    {
        int n;
        Status.Check(NativeMethods.mome_session_seq_length(h, sequence, &n));
        return n;
    });

    /// <summary>Keeps the first <paramref name="length"/> positions of a sequence.</summary>
    public void Truncate(int sequence, int length) => _handle.Use(h =>
    {
        Status.Check(NativeMethods.mome_session_seq_truncate(h, sequence, length));
        return 0;
    });

    public void Clear() => _handle.Use(h =>
    {
        Status.Check(NativeMethods.mome_session_clear(h));
        return 0;
    });

    public void Dispose() => _handle.Dispose();
}
