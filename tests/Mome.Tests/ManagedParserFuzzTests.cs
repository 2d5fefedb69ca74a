namespace Mome.Tests;

/// <summary>
/// The managed parsers of files and text from strangers, fuzzed in process
/// (<see cref="InProcessFuzzer{T}"/>): the facts JSONL reader, the prompts-file reader, the
/// bank's prompt side file, chat template detection and rendering. Each input is accepted (and
/// then checked) or refused with the parser's named exception, nothing else, and no input hangs.
/// </summary>
public sealed class ManagedParserFuzzTests
{
    private static readonly byte[][] JsonDictionary =
    [
        .. new[]
        {
            "\"question\"", "\"answer\"", "{", "}", "[", "]", "\"", ":", ",", "\\", "\\u", "\\ud800", "\\udc00", "\\ud83d\\ude00",
            "\\u0000", "\\n", "\n", "\r\n", "\r", " ", "null", "true", "1e400", "-0", "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[", "{\"a\":",
            "\"question\": \"q\"", "\"answer\": \"a\"", "\u00e9", "\u2028", "\ufeff",
        }.Select(FuzzInputs.Utf8),
        [0xEF, 0xBB, 0xBF], [0xFF], [0xC0, 0x80], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80], [0xE2, 0x82], [0],
    ];

    private string _dir = "";

    [SetUp]
    public void SetUp() => _dir = TestPaths.NewTempDir();

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, recursive: true);

    private static InProcessFuzzer<byte> BytesFuzzer(params string[] seeds) =>
        new(seeds.Select(FuzzInputs.Utf8), JsonDictionary, FuzzInputs.RandomByte, maxLength: 1 << 16);

    [Test]
    public void FactsFilesLoadOrAreRefusedWithTheirProblems()
    {
        var path = Path.Combine(_dir, "facts.jsonl");
        var fuzzer = BytesFuzzer(
            "{\"question\": \"What is the capital of France?\", \"answer\": \"Paris\"}\n{\"question\": \"2+2?\", \"answer\": \"4\"}\n",
            "{\"question\":\"caf\\u00e9 \\ud83d\\ude00\",\"answer\":\"yes\"}\r\n\r\n{\"answer\":\"b\",\"question\":\"a\",\"extra\":[1,2,{\"x\":null}]}",
            "{\"question\": \"q\", \"answer\": \"a\"}\n{\"question\": \"q\", \"answer\": \"a\"}\n{\"question\": \"q2\", \"answer\": \"\u00fcber\"}",
            "\ufeff{\"question\": \"with a BOM\", \"answer\": \"ok\"}");
        var (accepted, refused) = fuzzer.Run("facts", InProcessFuzzer<byte>.Iterations(2000), bytes =>
        {
            File.WriteAllBytes(path, bytes);
            var facts = FactsFile.Load(path);
            FuzzInputs.Check(facts.Count > 0, "no facts were accepted as a facts file");
            foreach (var f in facts)
                FuzzInputs.Check(f.Question.Trim().Length > 0 && f.Answer.Trim().Length > 0, $"an empty field was accepted: {f}");
            FuzzInputs.Check(facts.Select(f => f.Question).Distinct(StringComparer.Ordinal).Count() == facts.Count, "a question twice");
            return true;
        }, e => e is FactsFormatException f && f.Message.StartsWith(path, StringComparison.Ordinal) && f.Problems.Count > 0, b => b);
        Assert.That(accepted, Is.GreaterThan(100), "mutations that still parse are reached");
        Assert.That(refused, Is.GreaterThan(100), "broken files are reached");
    }

    [Test]
    public void PromptFilesLoadTheirNonBlankLines()
    {
        var path = Path.Combine(_dir, "prompts.txt");
        var fuzzer = BytesFuzzer("The weather today\nA recipe for bread\\nwith two lines\n\n  \nLast", "\ufeffone\r\ntwo\r\n");
        fuzzer.Run("prompts", InProcessFuzzer<byte>.Iterations(2000), bytes =>
        {
            File.WriteAllBytes(path, bytes);
            var prompts = PromptsFile.Load(path);
            foreach (var p in prompts)
            {
                FuzzInputs.Check(p.Trim().Length > 0, "a blank line was kept");
                FuzzInputs.Check(!p.Contains("\\n", StringComparison.Ordinal), "\\n stands for a newline");
            }
            return true;
        }, _ => false, b => b);
    }

    [Test]
    public void BankPromptSideFilesGiveTheirTemplateOrAreRefusedByName()
    {
        var bank = Path.Combine(_dir, "bank.safetensors");
        var side = BankPromptFile.PathOf(bank);
        var fuzzer = BytesFuzzer("{\"prompt_template\":\"Q: {question}\\nA:\"}", "{\"prompt_template\": \"<|im_start|>user\\n{question}<|im_end|>\\n\"}");
        var (accepted, refused) = fuzzer.Run("bank-prompt", InProcessFuzzer<byte>.Iterations(2000), bytes =>
        {
            File.WriteAllBytes(side, bytes);
            var template = BankPromptFile.Read(bank);
            FuzzInputs.Check(template!.Contains(BankPromptFile.QuestionMarker, StringComparison.Ordinal), $"no {BankPromptFile.QuestionMarker} in {template}");
            return true;
        }, e => e is InvalidDataException && e.Message.StartsWith(side, StringComparison.Ordinal), b => b);
        Assert.That(accepted, Is.GreaterThan(50));
        Assert.That(refused, Is.GreaterThan(50));
    }

    [TestCase("{\"prompt_template\":\"Q: {question} \\ud800\"}")]
    [TestCase("{\"prompt_template\":\"\\udc00 Q: {question}\"}")]
    public void ABankPromptFileWithALoneSurrogateEscapeIsRefusedByName(string json)
    {
        // Found by the fuzzer above: JsonElement.GetString threw InvalidOperationException.
        var bank = Path.Combine(_dir, "bank.safetensors");
        File.WriteAllText(BankPromptFile.PathOf(bank), json);
        var e = Assert.Throws<InvalidDataException>(() => BankPromptFile.Read(bank))!;
        Assert.That(e.Message, Does.StartWith(BankPromptFile.PathOf(bank) + ": not a bank prompt file"));
    }

    [Test]
    public void ChatTemplatesAreDetectedAndRenderOrRefuseTheirTurns()
    {
        var fuzzer = new InProcessFuzzer<char>(
            new[]
            {
                "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n{% endfor %}",
                "{{ bos_token }}{% for m in messages %}[INST] {{ m['content'] }} [/INST]{% endfor %}",
                "<|start_header_id|>{{ role }}<|end_header_id|>\n\n{{ content }}<|eot_id|>", "mistral",
                "<start_of_turn>user\n{{ content }}<end_of_turn>", "<|user|>\n{{ content }}<|end|>\n<|assistant|>",
            }.Select(s => s.ToCharArray()),
            new[] { "<|im_start|>", "[INST]", "<|assistant|>", "<|end|>", "<|user|>", "<start_of_turn>", "<|start_header_id|>", "<|end_header_id|>", "mistral", "\ud800", "\udfff" }
                .Select(s => s.ToCharArray()),
            FuzzInputs.RandomChar, maxLength: 1 << 12);
        var roles = new[] { "system", "user", "assistant", "tool", "", "USER", null };
        fuzzer.Run("chat-template", InProcessFuzzer<char>.Iterations(3000), chars =>
        {
            var text = new string(chars);
            var template = ChatTemplate.Detect(text);
            FuzzInputs.Check(Enum.IsDefined(template.Kind), $"kind {template.Kind}");
            // The text also serves as the turns' contents, cut into pieces with roles drawn from it.
            var turns = new List<ChatTurn>();
            for (var at = 0; at < text.Length && turns.Count < 8; at += 1 + text.Length / 4)
            {
                var role = roles[text[at] % roles.Length];
                turns.Add(new ChatTurn(role!, text[at..Math.Min(text.Length, at + 1 + text.Length / 4)]));
            }
            var prompt = template.Render(turns);
            // Gemma has no system turn (it joins the next user turn), so only the others must show.
            foreach (var t in turns.Where(t => t.Role != "system"))
                FuzzInputs.Check(prompt.Contains(t.Content.Trim(), StringComparison.Ordinal), $"the {t.Role} turn is missing");
            return true;
        }, e => e is ArgumentException, FuzzInputs.Utf16);
    }
}
