namespace Mome;

/// <summary>What calibrating the locality gate found: the threshold set, the closest negative's
/// evidence (a memorised question meets its own signature at 1), and how many negatives of each
/// kind were measured.</summary>
public sealed record GateCalibration(float Threshold, float ClosestNegative, string ClosestNegativeText, int NearMisses,
    int GenericNegatives, int GivenNegatives, int ModelSamples);

/// <summary>
/// Calibrates a memory layer's locality gate for a set of facts, as WISE calibrates its routing
/// threshold with a margin: the facts' signatures go into the gate, then the evidence of
/// negatives — text the bank must not affect — is measured, and the threshold is set between
/// the closest negative and a memorised question (evidence 1). Negatives are near-miss
/// questions made from the facts themselves (a word swapped with another fact's, a character
/// changed, a word dropped: questions of the same templates that were never memorised),
/// generic text and unrelated questions in the prompt template, text sampled from the base
/// model, and the caller's own.
/// </summary>
public static class GateCalibrator
{
    /// <summary>Highest threshold set: memorised questions asked in a session meet their
    /// signature at 1 up to rounding.</summary>
    public const float MaxThreshold = 0.999f;

    /// <summary>Generic text and unrelated questions (asked in the prompt template).</summary>
    // Kept apart from MemoryEvaluator's default unrelated prompts, so that an evaluation with
    // the defaults does not measure the very texts the threshold was set on.
    public static IReadOnlyList<string> GenericNegatives { get; } =
    [
        "It was a cold morning in the village, and", "The recipe calls for two cups of flour and", "According to the report, the company",
        "The children ran across the field toward", "In the beginning of the chapter the author", "Scientists have long believed that the",
        "The capital city is known for its", "After the storm passed, the fishermen", "for (int i = 0; i < n; i++) {",
        "import numpy as np\nx =", "Chapter 1\n\nThe", "Thank you for your message. I will",
        "Step 1: preheat the oven to", "The quick brown fox jumps over", "Breaking news: the government announced", "Hello, my name is",
    ];

    public static IReadOnlyList<string> GenericQuestions { get; } =
    [
        "What is the largest ocean?", "Who invented the telephone?", "How many days are in a leap year?",
        "What is seven times eight?", "Which animal is known as the king of the jungle?", "What language is spoken in Brazil?",
        "What gas do plants absorb?", "Who was the first president of the United States?", "What is the code?",
        "Which table holds the records?", "What is the name of the river?", "When does the library close?",
    ];

    public static GateCalibration Calibrate(MemoryBank bank, MemoryTuner tuner, IReadOnlyList<Fact> facts, TuningOptions options)
    {
        ArgumentNullException.ThrowIfNull(bank);
        ArgumentNullException.ThrowIfNull(tuner);
        ArgumentNullException.ThrowIfNull(facts);
        ArgumentNullException.ThrowIfNull(options);
        foreach (var fact in facts)
        {
            var (tokens, answerStart) = tuner.Encode(fact);
            bank.AddGateFact(tokens, answerStart, options.Threads);
        }
        var memorised = facts.Select(f => f.Question).ToHashSet(StringComparer.Ordinal);
        var nearMisses = NearMisses(facts.Select(f => f.Question).ToList(), options.NearMissesPerFact, seed: 17)
            .Where(q => !memorised.Contains(q)).Select(tuner.PromptOf).ToList();
        var generic = GenericNegatives.Concat(GenericQuestions.Where(q => !memorised.Contains(q)).Select(tuner.PromptOf)).ToList();
        var samples = ModelSamples(bank.Model, options.ModelSampleNegatives, options.Threads);
        var negatives = nearMisses.Concat(generic).Concat(options.Negatives).Concat(samples);

        var closest = -1f;
        var closestText = "";
        foreach (var text in negatives)
        {
            var tokens = tuner.Tokenizer.Encode(text);
            if (tokens.Length == 0) continue;
            var evidence = bank.GateEvidence(tokens, options.Threads).Max();
            if (evidence > closest) (closest, closestText) = (evidence, text);
        }
        var threshold = Math.Clamp(closest + options.GateMargin * (1 - closest), -1f, MaxThreshold);
        bank.SetGateThreshold(0, threshold);
        return new GateCalibration(threshold, closest, closestText, nearMisses.Count, generic.Count, options.Negatives.Count, samples.Count);
    }

    /// <summary>Questions of the same templates that differ from a fact's in one place: a word
    /// swapped for a word of another question, one character of a word changed (digits stay
    /// digits, letters letters), or a word dropped. Deterministic for a seed.</summary>
    public static IReadOnlyList<string> NearMisses(IReadOnlyList<string> questions, int perQuestion, int seed)
    {
        ArgumentNullException.ThrowIfNull(questions);
        var rng = new Random(seed);
        var words = questions.Select(q => q.Split(' ', StringSplitOptions.RemoveEmptyEntries)).ToList();
        var results = new List<string>();
        for (var i = 0; i < words.Count; i++)
        {
            var w = words[i];
            if (w.Length == 0) continue;
            for (var j = 0; j < perQuestion; j++)
            {
                var copy = (string[])w.Clone();
                var at = rng.Next(copy.Length);
                switch ((i + j) % 3)
                {
                    case 0 when words.Count > 1:
                        for (var tries = 0; tries < 8 && copy[at] == w[at]; tries++)
                        {
                            var other = words[rng.Next(words.Count)];
                            if (other.Length > 0) copy[at] = other[rng.Next(other.Length)];
                        }
                        if (copy[at] == w[at]) copy[at] = ChangeOneCharacter(copy[at], rng);
                        break;
                    case 2 when copy.Length > 2:
                        copy = copy.Where((_, k) => k != at).ToArray();
                        break;
                    default:
                        copy[at] = ChangeOneCharacter(copy[at], rng);
                        break;
                }
                results.Add(string.Join(' ', copy));
            }
        }
        return results;
    }

    private static string ChangeOneCharacter(string word, Random rng)
    {
        var letters = Enumerable.Range(0, word.Length).Where(k => char.IsLetterOrDigit(word[k])).ToList();
        if (letters.Count == 0) return word + "s";
        var at = letters[rng.Next(letters.Count)];
        var c = word[at];
        var pool = char.IsDigit(c) ? "0123456789" : char.IsUpper(c) ? "ABCDEFGHIJKLMNOPQRSTUVWXYZ" : "abcdefghijklmnopqrstuvwxyz";
        var replacement = c;
        while (replacement == c) replacement = pool[rng.Next(pool.Length)];
        return string.Concat(word.AsSpan(0, at), replacement.ToString(), word.AsSpan(at + 1));
    }

    // Text the base model itself writes (sampled at temperature 1 from short generic openings).
    private static List<string> ModelSamples(MomeModel model, int count, int threads)
    {
        var samples = new List<string>();
        if (count <= 0) return samples;
        using var generator = new TextGenerator(model, new SessionOptions { Threads = threads });
        for (var i = 0; i < count; i++)
        {
            var opening = GenericNegatives[i % GenericNegatives.Count];
            var text = generator.Generate(opening, new GenerationOptions { MaxTokens = 24, Temperature = 1f, Seed = 1000 + i });
            samples.Add(opening + text);
        }
        return samples;
    }
}
