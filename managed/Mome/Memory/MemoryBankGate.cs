using Mome.Interop;
using Mome.Native;

namespace Mome;

/// <summary>A memory layer's locality gate: how much evidence of a memorised fact a route needs
/// (at or below -1: the gate is off and every route applies) and how many signatures it holds.</summary>
public readonly record struct MemoryGate(float Threshold, long Signatures)
{
    /// <summary>The threshold that turns the gate off.</summary>
    public const float Off = -2f;

    public bool IsOn => Threshold > -1f;
}

// The locality gate (mome.h): the experts add their delta only to routes whose query is close
// to a memorised fact's, and exactly nothing elsewhere.
public sealed unsafe partial class MemoryBank
{
    /// <summary>The gate of memory layer <paramref name="slot"/>.</summary>
    public MemoryGate GetGate(int slot = 0)
    {
        float threshold;
        long signatures;
        var (tp, sp) = ((IntPtr)(&threshold), (IntPtr)(&signatures));
        _handle.Use(h =>
        {
            Status.Check(NativeMethods.mome_bank_get_gate(h, slot, (float*)tp, (long*)sp));
            return 0;
        });
        return new MemoryGate(threshold, signatures);
    }

    /// <summary>Sets the evidence a route needs ([-1, 1]; <see cref="MemoryGate.Off"/> turns the gate off).</summary>
    public void SetGateThreshold(int slot, float threshold) => _handle.Use(h =>
    {
        Status.Check(NativeMethods.mome_bank_set_gate_threshold(h, slot, threshold));
        return 0;
    });

    /// <summary>Adds a fact's signatures (question then answer tokens), as the bank routes it now.</summary>
    public void AddGateFact(ReadOnlySpan<int> tokens, int answerStart, int threads = 0)
    {
        fixed (int* t = tokens)
        {
            var (tp, n) = ((IntPtr)t, tokens.Length);
            _handle.Use(h =>
            {
                Status.Check(NativeMethods.mome_bank_gate_add_fact(h, (int*)tp, n, answerStart, threads));
                return 0;
            });
        }
    }

    /// <summary>The gate's evidence for a text as a session routes it: one value per sequence, or
    /// one per token for a bank that routes per token (-1: no signatures).</summary>
    public float[] GateEvidence(ReadOnlySpan<int> tokens, int threads = 0)
    {
        if (tokens.IsEmpty) throw new ArgumentException("the text has no tokens", nameof(tokens));
        var evidence = new float[Options.Routing == RoutingMode.Token ? tokens.Length : 1];
        int written;
        fixed (int* t = tokens)
        fixed (float* e = evidence)
        {
            var (tp, ep, wp, n, capacity) = ((IntPtr)t, (IntPtr)e, (IntPtr)(&written), tokens.Length, evidence.Length);
            _handle.Use(h =>
            {
                Status.Check(NativeMethods.mome_bank_gate_evidence(h, (int*)tp, n, (float*)ep, capacity, (int*)wp, threads));
                return 0;
            });
        }
        return evidence[..written];
    }
}
