namespace Mome.Tests;

/// <summary>Chat templates recognised from the Jinja text of tokenizer.chat_template and rendered
/// as llama.cpp renders them.</summary>
public sealed class ChatTemplateTests
{
    private static readonly ChatTurn[] Conversation =
    [
        new("system", "Be brief."), new("user", "Hi"), new("assistant", "Hello"), new("user", "Who are you?"),
    ];

    // Fragments of the templates these model families ship in their GGUF files.
    [TestCase("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}", ChatTemplateKind.ChatML)]
    [TestCase("{{ bos_token }}{% for message in messages %}{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' + message['content'] | trim + '<|eot_id|>' }}{% endfor %}", ChatTemplateKind.Llama3)]
    [TestCase("{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == 'system' %}{{ '<<SYS>>\\n' + message['content'] + '\\n<</SYS>>\\n\\n' }}{% endif %}", ChatTemplateKind.Llama2)]
    [TestCase("{% for message in messages %}{{'<|' + message['role'] + '|>' + '\n' + message['content'] + '<|end|>\n'}}{% endfor %}{{ '<|assistant|>\n' }}", ChatTemplateKind.Phi3)]
    [TestCase("{% for message in messages %}{% if message['role'] == 'user' %}{{ '<|user|>\n' + message['content'] + eos_token }}{% endif %}{% endfor %}", ChatTemplateKind.Zephyr)]
    [TestCase("{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}", ChatTemplateKind.Gemma)]
    [TestCase("{{ messages[0]['content'] }}", ChatTemplateKind.Plain)]
    [TestCase("", ChatTemplateKind.Plain)]
    public void TheFamilyIsRecognisedByItsMarkers(string jinja, ChatTemplateKind expected) =>
        Assert.That(ChatTemplate.Detect(jinja).Kind, Is.EqualTo(expected));

    [Test]
    public void ChatMLRendersEveryTurnAndOpensTheAssistantsTurn() =>
        Assert.That(ChatTemplate.Of(ChatTemplateKind.ChatML).Render(Conversation), Is.EqualTo(
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello<|im_end|>\n" +
            "<|im_start|>user\nWho are you?<|im_end|>\n<|im_start|>assistant\n"));

    [Test]
    public void Llama3RendersHeadersAndEndOfTurnTokens() =>
        Assert.That(ChatTemplate.Of(ChatTemplateKind.Llama3).Render(Conversation), Is.EqualTo(
            "<|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>" +
            "<|start_header_id|>assistant<|end_header_id|>\n\nHello<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nWho are you?<|eot_id|>" +
            "<|start_header_id|>assistant<|end_header_id|>\n\n"));

    [Test]
    public void Llama2PutsTheSystemPromptInsideTheFirstInstruction() =>
        Assert.That(ChatTemplate.Of(ChatTemplateKind.Llama2).Render(Conversation), Is.EqualTo(
            "[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST] Hello</s>[INST] Who are you? [/INST]"));

    [Test]
    public void GemmaHasNoSystemRoleAndCallsTheAssistantModel() =>
        Assert.That(ChatTemplate.Of(ChatTemplateKind.Gemma).Render(Conversation), Is.EqualTo(
            "<start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n<start_of_turn>model\nHello<end_of_turn>\n" +
            "<start_of_turn>user\nWho are you?<end_of_turn>\n<start_of_turn>model\n"));

    [Test]
    public void PlainAsksAQuestionTheWayMemoryTuningDoesByDefault()
    {
        var single = ChatTemplate.Of(ChatTemplateKind.Plain).Render([new("user", "Who keeps the lantern?")]);
        Assert.That(single, Is.EqualTo(new TuningOptions().PromptTemplate.Replace("{question}", "Who keeps the lantern?")));
        Assert.That(ChatTemplate.Of(ChatTemplateKind.Plain).Render(Conversation), Is.EqualTo("Be brief.\nQ: Hi\nA: Hello\nQ: Who are you?\nA:"));
    }

    [Test]
    public void AnUnknownRoleIsRefusedByName() =>
        Assert.That(() => ChatTemplate.Of(ChatTemplateKind.ChatML).Render([new("tool", "{}")]),
            Throws.ArgumentException.With.Message.Contains("'tool'"));
}
