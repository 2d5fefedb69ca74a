namespace Mome;

/// <summary>
/// Cuts streamed text at the first of some stop sequences: <see cref="Push"/> returns the text
/// that can no longer become part of a stop sequence, holding back a tail that might still
/// start one, and reports when one was reached (the stop sequence itself is never returned).
/// </summary>
public sealed class StopSequenceFilter
{
    private readonly string[] _stops;
    private string _held = "";

    public StopSequenceFilter(IEnumerable<string>? stops)
    {
        _stops = (stops ?? []).Where(s => !string.IsNullOrEmpty(s)).Distinct(StringComparer.Ordinal).ToArray();
    }

    public bool Stopped { get; private set; }

    /// <summary>Adds generated text; returns what is safe to show.</summary>
    public string Push(string text)
    {
        if (Stopped) return "";
        var all = _held + text;
        var cut = -1;
        foreach (var stop in _stops)
        {
            var at = all.IndexOf(stop, StringComparison.Ordinal);
            if (at >= 0 && (cut < 0 || at < cut)) cut = at;
        }
        if (cut >= 0)
        {
            Stopped = true;
            _held = "";
            return all[..cut];
        }
        var keep = 0;
        foreach (var stop in _stops)
            for (var n = Math.Min(stop.Length - 1, all.Length); n > keep; n--)
                if (all.AsSpan(all.Length - n).SequenceEqual(stop.AsSpan(0, n)))
                {
                    keep = n;
                    break;
                }
        _held = all[^keep..];
        return all[..^keep];
    }

    /// <summary>The held-back tail, once the text has ended without reaching a stop sequence.</summary>
    public string Flush()
    {
        var rest = Stopped ? "" : _held;
        _held = "";
        return rest;
    }
}
