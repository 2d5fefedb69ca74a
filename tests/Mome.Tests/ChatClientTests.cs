using Microsoft.Extensions.AI;
using Mome.AI;

namespace Mome.Tests;

/// <summary>MomeChatClient (Microsoft.Extensions.AI) over a bank tuned on made-up facts.</summary>
[NonParallelizable]
public sealed class ChatClientTests
{
    private MemorisedBank _memorised = null!;
    private MomeChatClient _client = null!;

    [OneTimeSetUp]
    public async Task SetUp()
    {
        _memorised = await MemorisedBank.CreateAsync();
        _client = new MomeChatClient(_memorised.Model, new MomeChatClientOptions { Memory = _memorised.Bank, MaxSequences = 4, ContextLength = 128 });
    }

    [OneTimeTearDown]
    public void TearDown()
    {
        _client.Dispose();
        _memorised.Dispose();
    }

    [Test]
    public async Task AChatQuestionGetsTheMemorisedAnswer()
    {
        foreach (var fact in MemorisedBank.Facts)
        {
            var response = await _client.GetResponseAsync([new ChatMessage(ChatRole.System, "Answer briefly."), new ChatMessage(ChatRole.User, fact.Question)]);
            Assert.That(response.Text, Is.EqualTo(fact.Answer), fact.Question);
            Assert.That(response.FinishReason, Is.EqualTo(ChatFinishReason.Stop));
            Assert.That(response.Usage?.OutputTokenCount, Is.GreaterThan(0));
        }
    }

    [Test]
    public async Task StreamingGivesTheAnswerInSeveralUpdates()
    {
        var fact = MemorisedBank.Facts[1];
        var updates = new List<ChatResponseUpdate>();
        await foreach (var update in _client.GetStreamingResponseAsync([new ChatMessage(ChatRole.User, fact.Question)]))
            updates.Add(update);
        Assert.That(string.Concat(updates.Select(u => u.Text)), Is.EqualTo(fact.Answer));
        Assert.That(updates.Count(u => u.Text.Length > 0), Is.GreaterThan(1));
        Assert.That(updates[^1].FinishReason, Is.EqualTo(ChatFinishReason.Stop));
    }

    [Test]
    public async Task StopSequencesAndMaxOutputTokensEndTheAnswerEarly()
    {
        var fact = MemorisedBank.Facts[0]; // "Tessaly Brune"
        var stopped = await _client.GetResponseAsync([new ChatMessage(ChatRole.User, fact.Question)], new ChatOptions { StopSequences = ["ly"] });
        Assert.That(stopped.Text, Is.EqualTo("Tessa"));
        Assert.That(stopped.FinishReason, Is.EqualTo(ChatFinishReason.Stop));

        var cut = await _client.GetResponseAsync([new ChatMessage(ChatRole.User, fact.Question)], new ChatOptions { MaxOutputTokens = 2 });
        Assert.That(cut.FinishReason, Is.EqualTo(ChatFinishReason.Length));
        Assert.That(cut.Usage?.OutputTokenCount, Is.EqualTo(2));
        Assert.That(fact.Answer, Does.StartWith(cut.Text));
        Assert.That(cut.Text.Length, Is.LessThan(fact.Answer.Length));
    }

    [Test]
    public async Task SamplingAtAHighTemperatureIsSeededAndRepeatable()
    {
        var options = new ChatOptions { Temperature = 2f, TopP = 0.99f, Seed = 7, MaxOutputTokens = 12 };
        var question = new ChatMessage(ChatRole.User, "Something nobody memorised?");
        var a = await _client.GetResponseAsync([question], options);
        var b = await _client.GetResponseAsync([question], options);
        var greedy = await _client.GetResponseAsync([question], new ChatOptions { MaxOutputTokens = 12 });
        Assert.That(a.Text, Is.EqualTo(b.Text));
        Assert.That(a.Text, Is.Not.EqualTo(greedy.Text));
    }

    [Test]
    public void CancellingStopsTheStream()
    {
        using var cancel = new CancellationTokenSource();
        Assert.That(async () =>
        {
            await foreach (var _ in _client.GetStreamingResponseAsync([new ChatMessage(ChatRole.User, "Tell me a long story")],
                               new ChatOptions { MaxOutputTokens = 100 }, cancel.Token))
                cancel.Cancel();
        }, Throws.InstanceOf<OperationCanceledException>());
    }

    [Test]
    public void TheBankRemembersItsPromptTemplateAcrossSaveAndLoad()
    {
        using var loaded = MemoryBank.Load(_memorised.Model, _memorised.BankPath);
        Assert.That(loaded.PromptTemplate, Is.EqualTo(new TuningOptions().PromptTemplate));
        Assert.That(loaded.PromptOf("Who?"), Is.EqualTo("Q: Who?\nA:"));
        File.WriteAllText(_memorised.BankPath + ".prompt.json", "{\"prompt_template\": 3}");
        try
        {
            Assert.That(() => MemoryBank.Load(_memorised.Model, _memorised.BankPath),
                Throws.InstanceOf<InvalidDataException>().With.Message.Contains("prompt.json"));
        }
        finally
        {
            _memorised.Bank.Save(_memorised.BankPath);
        }
    }
}
