namespace Mome.Cli.Versus;

/// <summary>Exact recall against training FLOPs (log scale), one curve per method, as a PNG.</summary>
public static class RecallPlot
{
    public static void Write(string path, IReadOnlyList<VersusRun> runs, string title)
    {
        var plot = new ScottPlot.Plot();
        foreach (var run in runs.Where(r => r.RecallCurve.Count > 0))
        {
            var xs = run.FlopsCurve.Select(Math.Log10).ToArray();
            var ys = run.RecallCurve.Select(r => 100 * r).ToArray();
            var line = plot.Add.Scatter(xs, ys);
            line.LegendText = $"{run.Method} (lr {run.LearningRate:G3})";
        }
        plot.Title($"Exact recall vs training compute: {title}");
        plot.XLabel("training FLOPs (log10)");
        plot.YLabel("exact recall (%)");
        plot.Axes.SetLimitsY(0, 105);
        plot.ShowLegend(ScottPlot.Alignment.LowerRight);
        plot.SavePng(path, 900, 560);
    }
}
