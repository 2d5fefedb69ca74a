namespace Mome.Tests;

/// <summary>Texts every tokenizer is checked on against llama.cpp.</summary>
internal static class TokenizerCorpus
{
    private const string CSharp = """
        using System;

        namespace Demo;

        public static class Program
        {
            // Sums the squares of 1..n.
            public static long SumOfSquares(int n)
            {
                long total = 0;
                for (var i = 1; i <= n; i++) total += (long)i * i;
                return total;
            }

            public static void Main(string[] args) => Console.WriteLine($"{SumOfSquares(10):N0} != {args.Length}");
        }
        """;

    private const string Python = """"
        def fibonacci(n: int) -> list[int]:
            """Return the first n Fibonacci numbers."""
            result = [0, 1]
            while len(result) < n:
                result.append(result[-1] + result[-2])
            return result[:n]


        if __name__ == "__main__":
        	print(fibonacci(10))  # tab-indented on purpose
        """";

    public static readonly string[] Texts =
    [
        "",
        " ",
        "  ",
        "\t",
        "Hello world",
        "Hello, world! How are you today?",
        "The quick brown fox jumps over the lazy dog.",
        " leading space",
        "trailing space ",
        "   three leading and two trailing  ",
        "multiple    spaces   inside",
        "x                    y",
        "tab\tseparated\tvalues",
        "\t\tindented with tabs",
        "line one\nline two\n\nline four\n",
        "windows\r\nline\r\nendings\r\n",
        "\n",
        "\n\n\n",
        "\r\n",
        " \n ",
        "   \n\t  \r\n x",
        "mixed \u00A0non-breaking\u00A0spaces and\u3000ideographic\u2009thin\u0085next-line\u001Funit-sep\u000Bvtab\u000Cff",
        "café naïve résumé Ångström Øre façade",
        "Ça va? Ünïcödé Straße ŒUVRE",
        "e\u0301 combining acute, a\u0308 umlaut, n\u0303, Z\u0335\u0321\u0330algo",
        "日本語のテキストです。東京は大きい。",
        "中文测试：你好，世界！",
        "한국어 텍스트입니다",
        "Привет, мир! Как дела?",
        "Ελληνικά γράμματα",
        "עברית מימין לשמאל",
        "العربية من اليمين إلى اليسار",
        "mixed RTL: hello שלום world عالم!",
        "हिन्दी देवनागरी",
        "ภาษาไทยไม่มีช่องว่าง",
        "emoji 😀😃🎉 👍🏽 👨‍👩‍👧‍👦 🇺🇸 ❤️",
        "math 𝐀𝐁𝐂 𝟙𝟚𝟛 and 𠀀𠀁 (astral letters and digits)",
        "1",
        "12",
        "123",
        "1234",
        "12345",
        "1234567890123",
        "3.14159265358979",
        "1,000,000 and 42nd of 2024-11-26, version 10.0.1",
        "٣٤٥ Arabic-Indic, ０１２ full-width, Ⅻ roman, ½ fraction, ² superscript",
        "don't won't can't I'm you're we've they'll he'd it's",
        "I'LL DON'T YOU'RE WE'VE SHE'D IT'S I'M",
        "'s 't 're 've 'm 'll 'd ' '",
        "rock'n'roll o'clock '90s",
        "Punctuation!!! ... ??? -- (parens) [brackets] {braces} <angles> @#$%^&*_+=|\\/~`",
        "\"quoted\" and 'single' and «guillemets» and “curly” — dashes – too…",
        CSharp,
        Python,
        "{\"key\": [1, 2.5, null, true], \"nested\": {\"a\": \"b\"}}",
        "SELECT name, COUNT(*) FROM users WHERE id = 42 GROUP BY name;",
        "<s>",
        "</s>",
        "<unk>",
        "<s>Hello</s>",
        "text <s> inside </s> text",
        "</s></s> twice",
        "<|begin_of_text|>",
        "<|end_of_text|>",
        "<|eot_id|>",
        "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi!<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
        "Q: What is the capital of France?\nA: Paris</s>",
        "<0x41> looks like a byte token",
        "<|reserved_special_token_0|> and <|not_a_token|>",
        "a",
        "ab",
        "supercalifragilisticexpialidocious antidisestablishmentarianism",
        "\u0000 nul and \u0007 bell control characters",
        "a lone surrogate \uD800 here",
        "ＡＢＣ full-width letters and ｶﾀｶﾅ half-width",
    ];

    /// <summary>About 4 KB of mixed text, for timing.</summary>
    public static string Long => string.Join("\n", Texts.Where(t => t.Length > 20)).PadRight(4096, '.')[..4096];
}
