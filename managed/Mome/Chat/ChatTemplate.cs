using System.Text;

namespace Mome;

/// <summary>One turn of a conversation: its role ("system", "user" or "assistant") and text.</summary>
public sealed record ChatTurn(string Role, string Content);

/// <summary>The conversation formats Mome renders without a Jinja engine.</summary>
public enum ChatTemplateKind
{
    /// <summary>No recognised template: "Q: question\nA: answer" turns, the prompt format that
    /// memory tuning uses by default.</summary>
    Plain,
    ChatML,
    Llama2,
    Llama3,
    Phi3,
    Zephyr,
    Gemma,
}

/// <summary>
/// Renders a conversation as a prompt. The kind is recognised from the GGUF's
/// <c>tokenizer.chat_template</c> by the markers each family's Jinja template contains, in the
/// order llama.cpp's <c>llm_chat_detect_template</c> tries them; each kind renders as that
/// function's counterpart in llama.cpp (<c>llm_chat_apply_template</c>) does.
/// </summary>
public sealed class ChatTemplate
{
    /// <summary>The GGUF key holding the model's Jinja chat template.</summary>
    public const string MetadataKey = "tokenizer.chat_template";

    private ChatTemplate(ChatTemplateKind kind) => Kind = kind;

    public ChatTemplateKind Kind { get; }

    /// <summary>True when the rendered prompt holds special-token markers (such as
    /// <c>&lt;|im_start|&gt;</c>) that must be tokenized as the special tokens they name.</summary>
    public bool HasSpecialMarkers => Kind != ChatTemplateKind.Plain;

    /// <summary>Text that ends an assistant turn in this format: generation stops there.</summary>
    public IReadOnlyList<string> EndOfTurn => Kind switch
    {
        ChatTemplateKind.ChatML => ["<|im_end|>"],
        ChatTemplateKind.Llama2 => ["</s>"],
        ChatTemplateKind.Llama3 => ["<|eot_id|>"],
        ChatTemplateKind.Phi3 => ["<|end|>"],
        ChatTemplateKind.Zephyr => ["<|endoftext|>"],
        ChatTemplateKind.Gemma => ["<end_of_turn>"],
        _ => ["\nQ:"],
    };

    public static ChatTemplate Of(ChatTemplateKind kind) => new(kind);

    /// <summary>The kind a Jinja template is (Plain for null, empty or unrecognised text).</summary>
    public static ChatTemplate Detect(string? jinja)
    {
        if (string.IsNullOrEmpty(jinja)) return new(ChatTemplateKind.Plain);
        bool Has(string marker) => jinja.Contains(marker, StringComparison.Ordinal);
        var kind = jinja switch
        {
            _ when Has("<|im_start|>") => ChatTemplateKind.ChatML,
            _ when jinja.StartsWith("mistral", StringComparison.Ordinal) || Has("[INST]") => ChatTemplateKind.Llama2,
            _ when Has("<|assistant|>") && Has("<|end|>") => ChatTemplateKind.Phi3,
            _ when Has("<|user|>") => ChatTemplateKind.Zephyr,
            _ when Has("<start_of_turn>") => ChatTemplateKind.Gemma,
            _ when Has("<|start_header_id|>") && Has("<|end_header_id|>") => ChatTemplateKind.Llama3,
            _ => ChatTemplateKind.Plain,
        };
        return new(kind);
    }

    /// <summary>The template of a model's <c>tokenizer.chat_template</c> (Plain without one).</summary>
    public static ChatTemplate FromModel(MomeModel model)
    {
        ArgumentNullException.ThrowIfNull(model);
        return model.Metadata.TryGetValue(MetadataKey, out var value) && value.Type == MetadataType.String
            ? Detect(value.GetString())
            : new(ChatTemplateKind.Plain);
    }

    /// <summary>The conversation as a prompt that ends where the assistant's next turn begins.</summary>
    public string Render(IReadOnlyList<ChatTurn> turns)
    {
        ArgumentNullException.ThrowIfNull(turns);
        foreach (var turn in turns)
            if (turn.Role is not ("system" or "user" or "assistant"))
                throw new ArgumentException($"chat role '{turn.Role}' is not one of system, user, assistant", nameof(turns));
        var s = new StringBuilder();
        switch (Kind)
        {
            case ChatTemplateKind.ChatML:
                foreach (var t in turns) s.Append("<|im_start|>").Append(t.Role).Append('\n').Append(t.Content).Append("<|im_end|>\n");
                s.Append("<|im_start|>assistant\n");
                break;
            case ChatTemplateKind.Llama3:
                foreach (var t in turns)
                    s.Append("<|start_header_id|>").Append(t.Role).Append("<|end_header_id|>\n\n").Append(t.Content.Trim()).Append("<|eot_id|>");
                s.Append("<|start_header_id|>assistant<|end_header_id|>\n\n");
                break;
            case ChatTemplateKind.Llama2:
                RenderLlama2(turns, s);
                break;
            case ChatTemplateKind.Phi3:
                foreach (var t in turns) s.Append("<|").Append(t.Role).Append("|>\n").Append(t.Content).Append("<|end|>\n");
                s.Append("<|assistant|>\n");
                break;
            case ChatTemplateKind.Zephyr:
                foreach (var t in turns) s.Append("<|").Append(t.Role).Append("|>\n").Append(t.Content).Append("<|endoftext|>\n");
                s.Append("<|assistant|>\n");
                break;
            case ChatTemplateKind.Gemma:
                RenderGemma(turns, s);
                break;
            default:
                RenderPlain(turns, s);
                break;
        }
        return s.ToString();
    }

    // [INST] <<SYS>>\nsystem\n<</SYS>>\n\nuser [/INST] assistant</s>[INST] user [/INST]
    private static void RenderLlama2(IReadOnlyList<ChatTurn> turns, StringBuilder s)
    {
        var open = false;
        foreach (var t in turns)
        {
            if (t.Role == "assistant")
            {
                s.Append(' ').Append(t.Content.Trim()).Append("</s>");
                open = false;
                continue;
            }
            if (!open)
            {
                s.Append("[INST] ");
                open = true;
            }
            if (t.Role == "system") s.Append("<<SYS>>\n").Append(t.Content.Trim()).Append("\n<</SYS>>\n\n");
            else s.Append(t.Content.Trim()).Append(" [/INST]");
        }
    }

    // Gemma has no system role: a system turn is prepended to the next user turn.
    private static void RenderGemma(IReadOnlyList<ChatTurn> turns, StringBuilder s)
    {
        var system = "";
        foreach (var t in turns)
        {
            if (t.Role == "system")
            {
                system = t.Content.Trim() + "\n\n";
                continue;
            }
            var role = t.Role == "assistant" ? "model" : "user";
            s.Append("<start_of_turn>").Append(role).Append('\n').Append(system).Append(t.Content.Trim()).Append("<end_of_turn>\n");
            system = "";
        }
        s.Append("<start_of_turn>model\n");
    }

    private static void RenderPlain(IReadOnlyList<ChatTurn> turns, StringBuilder s)
    {
        foreach (var t in turns)
        {
            if (t.Role == "system") s.Append(t.Content.Trim()).Append('\n');
            else if (t.Role == "user") s.Append("Q: ").Append(t.Content.Trim()).Append("\nA:");
            else s.Append(' ').Append(t.Content.Trim()).Append('\n');
        }
    }
}
