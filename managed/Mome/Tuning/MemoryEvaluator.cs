using System.Numerics.Tensors;
using Mome.Engines;
using Mome.Native;

namespace Mome;

/// <summary>
/// A bank measured on the three axes of memory editing. Reliability: <see cref="ExactRecall"/>
/// (every answer token, and the end of the answer, is the greedy choice) and
/// <see cref="TokenAccuracy"/>. Locality: <see cref="InterferenceKl"/> (mean KL(base || with
/// bank) over every position of every unrelated prompt), <see cref="InterferenceKlMax"/>,
/// <see cref="LocalityTop1"/> (the fraction of those positions whose greedy token is unchanged);
/// for questions of the facts' kind that were never memorised, <see cref="UnseenFalseRecall"/>
/// (the fraction whose greedy answer is some memorised answer) and <see cref="UnseenKl"/> (over
/// every position of their prompts). Generality: <see cref="Generality"/>, exact recall of
/// reworded questions. Fields without inputs are NaN.
/// </summary>
public sealed record EvaluationResult(double ExactRecall, double TokenAccuracy, double InterferenceKl, int Facts, int UnrelatedPrompts)
{
    public double InterferenceKlMax { get; init; }
    public double LocalityTop1 { get; init; } = double.NaN;
    public int UnrelatedPositions { get; init; }
    public double UnseenFalseRecall { get; init; } = double.NaN;
    public double UnseenKl { get; init; } = double.NaN;
    public int UnseenQuestions { get; init; }
    public double Generality { get; init; } = double.NaN;
    public int Paraphrases { get; init; }
}

/// <summary>Measures memorisation and what it costs elsewhere (see <see cref="EvaluationResult"/>).</summary>
public static class MemoryEvaluator
{
    /// <summary>Prompts unrelated to any fact, used when the caller gives none: generic text, and
    /// unrelated questions in the default prompt template.</summary>
    public static IReadOnlyList<string> DefaultUnrelatedPrompts { get; } =
    [
        "The weather today is", "Once upon a time there was", "The best way to learn a language is", "In 1969 the first",
        "My favourite food is", "The river flows into the", "He opened the door and saw", "Water boils at",
        "The meeting was moved to", "She wrote a letter to her", "The train leaves at", "Music can make people",
        "Q: What is the tallest mountain on Earth?\nA:", "Q: How do you say hello in Spanish?\nA:",
        "Q: What is the square root of sixteen?\nA:", "Q: Who discovered penicillin?\nA:",
    ];

    public static EvaluationResult Evaluate(MemoryBank bank, IReadOnlyList<Fact> facts, IReadOnlyList<string>? unrelated = null,
        TuningOptions? options = null, IReadOnlyList<Fact>? unseen = null, IReadOnlyList<Fact>? paraphrases = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(bank);
        ArgumentNullException.ThrowIfNull(facts);
        // Evaluation only reads the bank: every native call of it may stop (OperationCanceledException).
        using var abort = NativeAbort.Scope(cancellationToken);
        var tuner = new MemoryTuner(bank, options);
        var threads = options?.Threads ?? 0;
        return Evaluate(withBank => new MomeSession(bank.Model, new SessionOptions { Threads = threads, Memory = withBank ? bank : null }),
            new FactEncoder(tuner.Tokenizer, (options ?? new TuningOptions()).PromptTemplate), facts, unrelated, unseen, paraphrases);
    }

    /// <summary>The same measures over sessions of any engine: <paramref name="open"/>(true) opens a
    /// session with the bank, (false) one without; <paramref name="encoder"/> renders the facts.</summary>
    public static EvaluationResult Evaluate(Func<bool, IInferenceSession> open, FactEncoder encoder, IReadOnlyList<Fact> facts,
        IReadOnlyList<string>? unrelated = null, IReadOnlyList<Fact>? unseen = null, IReadOnlyList<Fact>? paraphrases = null)
    {
        ArgumentNullException.ThrowIfNull(open);
        ArgumentNullException.ThrowIfNull(encoder);
        ArgumentNullException.ThrowIfNull(facts);
        using var plain = open(false);
        using var tuned = open(true);
        var (exact, correct, total) = Recall(tuned, encoder, facts);
        var result = new EvaluationResult(Ratio(exact, facts.Count), Ratio(correct, total), 0, facts.Count, 0);

        unrelated ??= DefaultUnrelatedPrompts;
        var locality = Compare(plain, tuned, unrelated.Select(p => encoder.Tokenizer.Encode(p)));
        result = result with
        {
            InterferenceKl = locality.MeanKl, InterferenceKlMax = locality.MaxKl, LocalityTop1 = locality.Top1Unchanged,
            UnrelatedPrompts = unrelated.Count, UnrelatedPositions = locality.Positions,
        };

        if (unseen is { Count: > 0 })
        {
            var answers = facts.Select(f => f.Answer.Trim()).ToHashSet(StringComparer.Ordinal);
            var longest = facts.Count == 0 ? 16 : facts.Max(f => encoder.Tokenizer.Encode(f.Answer, addSpecial: false).Length) + 2;
            using var generator = new TextGenerator(open(true), encoder.Tokenizer);
            var falseRecalls = unseen.Count(q => answers.Contains(
                generator.Generate(encoder.PromptOf(q.Question), new GenerationOptions { MaxTokens = longest }).Trim()));
            var unseenLocality = Compare(plain, tuned, unseen.Select(q => encoder.Tokenizer.Encode(encoder.PromptOf(q.Question))));
            result = result with
            {
                UnseenFalseRecall = Ratio(falseRecalls, unseen.Count), UnseenKl = unseenLocality.MeanKl, UnseenQuestions = unseen.Count,
            };
        }
        if (paraphrases is { Count: > 0 })
        {
            var (recalled, _, _) = Recall(tuned, encoder, paraphrases);
            result = result with { Generality = Ratio(recalled, paraphrases.Count), Paraphrases = paraphrases.Count };
        }
        return result;
    }

    /// <summary>KL(base || tuned) of the softmax distributions of two logit vectors.</summary>
    public static double Kl(ReadOnlySpan<float> baseLogits, ReadOnlySpan<float> tunedLogits)
    {
        var p = new float[baseLogits.Length];
        var q = new float[tunedLogits.Length];
        TensorPrimitives.SoftMax(baseLogits, p);
        TensorPrimitives.SoftMax(tunedLogits, q);
        var kl = 0.0;
        for (var i = 0; i < p.Length; i++)
            if (p[i] > 0) kl += p[i] * (Math.Log(p[i]) - Math.Log(Math.Max(q[i], 1e-30f)));
        return Math.Max(kl, 0);
    }

    private static double Ratio(int part, int whole) => whole == 0 ? 0 : (double)part / whole;

    // Each fact's answer tokens against the greedy choice, given the answer so far, through a
    // session with the bank: the question as the first batch (what a session routes from, as
    // when the question is asked), then the answer.
    private static (int Exact, int Correct, int Total) Recall(IInferenceSession tuned, FactEncoder encoder, IReadOnlyList<Fact> facts)
    {
        int exact = 0, correct = 0, total = 0;
        var vocab = tuned.VocabSize;
        foreach (var fact in facts)
        {
            var (tokens, answerStart) = encoder.Encode(fact);
            tuned.Clear();
            var first = tuned.Evaluate(tokens.AsSpan(0, answerStart));
            var rest = tokens.Length - answerStart > 1 ? tuned.Evaluate(tokens.AsSpan(answerStart, tokens.Length - answerStart - 1), allLogits: true) : [];
            var hits = 0;
            for (var i = answerStart; i < tokens.Length; i++)
            {
                var logits = i == answerStart ? first.AsSpan() : rest.AsSpan((i - answerStart - 1) * vocab, vocab);
                hits += TensorPrimitives.IndexOfMax(logits) == tokens[i] ? 1 : 0;
            }
            correct += hits;
            total += tokens.Length - answerStart;
            if (hits == tokens.Length - answerStart) exact++;
        }
        return (exact, correct, total);
    }

    // Every position of every text, with and without the bank.
    private static Locality Compare(IInferenceSession plain, IInferenceSession tuned, IEnumerable<int[]> texts) =>
        CompareLogits(tokens => Logits(plain, tokens), tokens => Logits(tuned, tokens), plain.VocabSize, texts);

    private static float[] Logits(IInferenceSession session, int[] tokens)
    {
        session.Clear();
        return session.Evaluate(tokens, allLogits: true);
    }

    /// <summary>Locality between two sources of every position's logits ([tokens x vocab] per
    /// text): the mean and largest KL(base || tuned) over every position of every text, and the
    /// fraction of positions whose greedy token is unchanged.</summary>
    public static Locality CompareLogits(Func<int[], float[]> baseLogits, Func<int[], float[]> tunedLogits, int vocab, IEnumerable<int[]> texts)
    {
        ArgumentNullException.ThrowIfNull(texts);
        double sum = 0, max = 0;
        int positions = 0, unchanged = 0;
        foreach (var tokens in texts)
        {
            if (tokens.Length == 0) continue;
            var a = baseLogits(tokens);
            var b = tunedLogits(tokens);
            for (var t = 0; t < tokens.Length; t++)
            {
                var pa = a.AsSpan(t * vocab, vocab);
                var pb = b.AsSpan(t * vocab, vocab);
                var kl = Kl(pa, pb);
                sum += kl;
                max = Math.Max(max, kl);
                if (TensorPrimitives.IndexOfMax(pa) == TensorPrimitives.IndexOfMax(pb)) unchanged++;
                positions++;
            }
        }
        return new Locality(positions == 0 ? 0 : sum / positions, max, positions == 0 ? double.NaN : (double)unchanged / positions, positions);
    }
}

/// <summary>What <see cref="MemoryEvaluator.CompareLogits"/> measures.</summary>
public sealed record Locality(double MeanKl, double MaxKl, double Top1Unchanged, int Positions);
