using System.Globalization;

namespace Mome.Ilgpu.Banks;

/// <summary>Numbers as the native core's messages print them with printf.</summary>
internal static class CFormat
{
    /// <summary>%g: six significant digits, a two-digit exponent, "nan" and "inf".</summary>
    public static string G(double x)
    {
        if (double.IsNaN(x)) return double.IsNegative(x) ? "-nan" : "nan";
        if (double.IsInfinity(x)) return x < 0 ? "-inf" : "inf";
        return x.ToString("G6", CultureInfo.InvariantCulture).Replace("E", "e", StringComparison.Ordinal);
    }

    /// <summary>%.0f and %.1f.</summary>
    public static string F(double x, int decimals) => x.ToString("F" + decimals, CultureInfo.InvariantCulture);
}
