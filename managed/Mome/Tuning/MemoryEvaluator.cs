using System.Numerics.Tensors;

namespace Mome;

/// <summary>How well a bank recalls facts, and how much it disturbs unrelated text.</summary>
public sealed record EvaluationResult(double ExactRecall, double TokenAccuracy, double InterferenceKl, int Facts, int UnrelatedPrompts);

/// <summary>Measures memorisation: exact recall (every answer token, and the end of the
/// answer, is the greedy choice), per-token accuracy, and the mean KL divergence between the
/// base model's and the tuned model's next-token distributions on unrelated prompts.</summary>
public static class MemoryEvaluator
{
    /// <summary>Prompts unrelated to any fact, used when the caller gives none.</summary>
    public static IReadOnlyList<string> DefaultUnrelatedPrompts { get; } =
    [
        "The weather today is", "Once upon a time there was", "The best way to learn a language is", "In 1969 the first",
        "My favourite food is", "The river flows into the", "He opened the door and saw", "Water boils at",
        "The meeting was moved to", "She wrote a letter to her", "The train leaves at", "Music can make people",
    ];

    public static EvaluationResult Evaluate(MemoryBank bank, IReadOnlyList<Fact> facts, IReadOnlyList<string>? unrelated = null,
        TuningOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(bank);
        ArgumentNullException.ThrowIfNull(facts);
        var tuner = new MemoryTuner(bank, options);
        int exact = 0, correct = 0, total = 0;
        foreach (var fact in facts)
        {
            var (tokens, answerStart) = tuner.Encode(fact);
            var step = bank.FactBackward(tokens, answerStart, null, false, options?.Threads ?? 0);
            correct += step.Correct;
            total += step.AnswerTokens;
            if (step.Exact) exact++;
        }
        unrelated ??= DefaultUnrelatedPrompts;
        var kl = 0.0;
        using (var plain = new MomeSession(bank.Model, new SessionOptions { Threads = options?.Threads ?? 0 }))
        using (var tuned = new MomeSession(bank.Model, new SessionOptions { Threads = options?.Threads ?? 0, Memory = bank }))
        {
            foreach (var prompt in unrelated)
            {
                var tokens = tuner.Tokenizer.Encode(prompt);
                plain.Clear();
                tuned.Clear();
                kl += Kl(plain.Evaluate(tokens), tuned.Evaluate(tokens));
            }
        }
        return new EvaluationResult(facts.Count == 0 ? 0 : (double)exact / facts.Count, total == 0 ? 0 : (double)correct / total,
            unrelated.Count == 0 ? 0 : kl / unrelated.Count, facts.Count, unrelated.Count);
    }

    /// <summary>KL(base || tuned) of the softmax distributions of two logit vectors.</summary>
    public static double Kl(float[] baseLogits, float[] tunedLogits)
    {
        var p = new float[baseLogits.Length];
        var q = new float[tunedLogits.Length];
        TensorPrimitives.SoftMax(baseLogits, p);
        TensorPrimitives.SoftMax(tunedLogits, q);
        var kl = 0.0;
        for (var i = 0; i < p.Length; i++)
            if (p[i] > 0) kl += p[i] * (Math.Log(p[i]) - Math.Log(Math.Max(q[i], 1e-30f)));
        return kl;
    }
}
