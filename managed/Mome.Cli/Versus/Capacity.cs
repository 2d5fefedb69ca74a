namespace Mome.Cli.Versus;

/// <summary>One capacity trial: the first <see cref="Facts"/> facts trained by one method.</summary>
public sealed record CapacityPoint(string Method, int Facts, double ExactRecall, int Epochs, long TrainedParams, double AnswerBits)
{
    public double BitsPerParam => TrainedParams > 0 ? AnswerBits / TrainedParams : 0;
}

/// <summary>
/// How many random-answer facts a method holds at 100% exact recall within the epoch budget:
/// the facts' first n for growing n, until a count is no longer held. A fact's answer carries
/// length x log2(alphabet) bits when its characters are uniformly random over the alphabet
/// (the distinct characters of all the answers), as synthetic random facts are; the paper
/// anchor is ~2 bits of knowledge per parameter (Physics of Language Models 3.3).
/// </summary>
public static class Capacity
{
    public const double AnchorBitsPerParam = 2.0;

    public static double AnswerBits(IReadOnlyList<Fact> facts, IReadOnlyList<Fact> alphabetSource)
    {
        var alphabet = alphabetSource.SelectMany(f => f.Answer).Distinct().Count();
        return alphabet < 2 ? 0 : facts.Sum(f => f.Answer.Length * Math.Log2(alphabet));
    }

    public static List<CapacityPoint> Run(VersusSetup setup, string method, float lr, IReadOnlyList<int> counts, Action<string>? log)
    {
        var points = new List<CapacityPoint>();
        foreach (var n in counts.Where(n => n >= 1 && n <= setup.Facts.Count).Distinct().Order())
        {
            var subset = setup.Facts.Take(n).ToList();
            var s = setup with { Facts = subset };
            var run = method switch
            {
                "memory" => VersusRunner.Memory(s, lr),
                "lora" => VersusRunner.FineTune(s, FineTuningMode.Lora, lr),
                _ => VersusRunner.FineTune(s, FineTuningMode.Full, lr),
            };
            var point = new CapacityPoint(method, n, run.ExactRecall, run.Epochs, run.TrainedParams, AnswerBits(subset, setup.Facts));
            log?.Invoke($"capacity {method} lr {lr}: {n} facts, recall {run.ExactRecall:P1} after {run.Epochs} epochs, {point.BitsPerParam:G3} bits/param");
            points.Add(point);
            if (run.ExactRecall < 1) break;  // the count it no longer holds
        }
        return points;
    }
}
