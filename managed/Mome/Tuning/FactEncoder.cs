namespace Mome;

/// <summary>A fact as every trainer sees it: the question in the prompt template, then the
/// answer and the end-of-sequence token; the loss is on the answer's tokens.</summary>
public sealed class FactEncoder(MomeTokenizer tokenizer, string promptTemplate)
{
    public MomeTokenizer Tokenizer => tokenizer;

    /// <summary>The tokens a fact is trained on and its answer's first index.</summary>
    public (int[] Tokens, int AnswerStart) Encode(Fact fact)
    {
        var prompt = tokenizer.Encode(PromptOf(fact.Question));
        var answer = tokenizer.Encode(fact.Answer, addSpecial: false).ToList();
        if (tokenizer.EosToken is { } eos) answer.Add(eos);
        return ([.. prompt, .. answer], prompt.Length);
    }

    public string PromptOf(string question) => promptTemplate.Replace("{question}", question, StringComparison.Ordinal);
}
