using Mome.Interop;
using Mome.Native;

namespace Mome;

/// <summary>Encoded facts handed to a native trainer as its ABI takes them (mome_tuner_add_facts,
/// mome_finetuner_add_facts): every fact's tokens one after the other, each fact's length and
/// the index where its answer starts.</summary>
internal static unsafe class FactsAbi
{
    public static void Add(IntPtr trainer, IReadOnlyList<(int[] Tokens, int AnswerStart)> facts,
        delegate*<IntPtr, int*, int*, int*, int, MomeStatus> add)
    {
        var tokens = facts.SelectMany(f => f.Tokens).ToArray();
        var lengths = facts.Select(f => f.Tokens.Length).ToArray();
        var answers = facts.Select(f => f.AnswerStart).ToArray();
        fixed (int* tk = tokens)
        fixed (int* l = lengths)
        fixed (int* a = answers)
            Status.Check(add(trainer, tk, l, a, lengths.Length));
    }
}
