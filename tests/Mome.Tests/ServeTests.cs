using System.ClientModel;
using System.Diagnostics;
using System.Net;
using System.Text;
using System.Text.Json;
using Mome.Cli.Serve;
using OpenAI;
using OpenAI.Chat;

namespace Mome.Tests;

/// <summary>`mome serve` (in-process, on a free loopback port) answered through the official
/// OpenAI .NET client and raw HTTP: memorised answers, streams decoded together, bad requests.</summary>
[NonParallelizable]
public sealed class ServeTests
{
    private MemorisedBank _memorised = null!;
    private MomeServer _server = null!;
    private ChatClient _chat = null!;
    private HttpClient _http = null!;

    [OneTimeSetUp]
    public async Task SetUp()
    {
        _memorised = await MemorisedBank.CreateAsync();
        _server = await MomeServer.StartAsync(new ServeOptions
        {
            ModelPath = _memorised.ModelPath, MemoryPath = _memorised.BankPath, Port = 0, Parallel = 8, ContextLength = 128, MaxTokens = 64,
        });
        _chat = new ChatClient("tiny", new ApiKeyCredential("unused"), new OpenAIClientOptions { Endpoint = new Uri(_server.Address, "v1") });
        _http = new HttpClient { BaseAddress = _server.Address };
    }

    [OneTimeTearDown]
    public async Task TearDown()
    {
        _http.Dispose();
        await _server.DisposeAsync();
        _memorised.Dispose();
    }

    [Test]
    public async Task ChatCompletionReturnsTheMemorisedAnswer()
    {
        foreach (var fact in MemorisedBank.Facts)
        {
            ChatCompletion completion = await _chat.CompleteChatAsync(new UserChatMessage(fact.Question));
            Assert.That(completion.Content.Single().Text, Is.EqualTo(fact.Answer), fact.Question);
            Assert.That(completion.FinishReason, Is.EqualTo(ChatFinishReason.Stop));
            Assert.That(completion.Usage.OutputTokenCount, Is.GreaterThan(0));
        }
    }

    [Test]
    public async Task StreamedChatCompletionReturnsTheMemorisedAnswer()
    {
        var fact = MemorisedBank.Facts[2];
        var pieces = new List<string>();
        ChatFinishReason? finish = null;
        await foreach (var update in _chat.CompleteChatStreamingAsync(new UserChatMessage(fact.Question)))
        {
            pieces.AddRange(update.ContentUpdate.Select(p => p.Text));
            finish ??= update.FinishReason;
        }
        Assert.That(string.Concat(pieces), Is.EqualTo(fact.Answer));
        Assert.That(pieces.Count(p => p.Length > 0), Is.GreaterThan(1), "the answer arrives in several events");
        Assert.That(finish, Is.EqualTo(ChatFinishReason.Stop));
    }

    [Test]
    public async Task EightStreamsAtOnceEachGetTheirOwnAnswerDecodedTogether()
    {
        async Task<string> Ask(string question)
        {
            var text = new StringBuilder();
            await foreach (var update in _chat.CompleteChatStreamingAsync(new UserChatMessage(question)))
                foreach (var part in update.ContentUpdate) text.Append(part.Text);
            return text.ToString();
        }
        var questions = Enumerable.Range(0, 8).Select(i => MemorisedBank.Facts[i % MemorisedBank.Facts.Length]).ToList();
        var answers = await Task.WhenAll(questions.Select(f => Task.Run(() => Ask(f.Question))));
        Assert.That(answers, Is.EqualTo(questions.Select(f => f.Answer).ToArray()));
        Assert.That(_server.Generator.PeakSequences, Is.GreaterThan(1), "concurrent requests share batched steps");
    }

    [Test]
    public async Task CompletionsAnswerARawPromptPlainAndStreamed()
    {
        var fact = MemorisedBank.Facts[3];
        var prompt = _memorised.Bank.PromptOf(fact.Question)!;
        using var plain = await Post("v1/completions", JsonSerializer.Serialize(new { model = "tiny", prompt, max_tokens = 20 }));
        Assert.That(plain.StatusCode, Is.EqualTo(HttpStatusCode.OK));
        using var body = JsonDocument.Parse(await plain.Content.ReadAsStringAsync());
        var choice = body.RootElement.GetProperty("choices")[0];
        Assert.That(choice.GetProperty("text").GetString()!.Trim(), Is.EqualTo(fact.Answer));
        Assert.That(choice.GetProperty("finish_reason").GetString(), Is.EqualTo("stop"));

        using var streamed = await Post("v1/completions", JsonSerializer.Serialize(new { prompt, max_tokens = 3, stream = true }));
        Assert.That(streamed.Content.Headers.ContentType?.MediaType, Is.EqualTo("text/event-stream"));
        var events = (await streamed.Content.ReadAsStringAsync()).Split("\n\n", StringSplitOptions.RemoveEmptyEntries);
        Assert.That(events[^1], Is.EqualTo("data: [DONE]"));
        var chunks = events[..^1].Select(e => JsonDocument.Parse(e["data: ".Length..]).RootElement.GetProperty("choices")[0]).ToList();
        var streamedText = string.Concat(chunks.Select(c => c.GetProperty("text").GetString())).Trim();
        Assert.That(streamedText, Is.Not.Empty);
        Assert.That(fact.Answer, Does.StartWith(streamedText), "three tokens of the memorised answer");
        Assert.That(streamedText.Length, Is.LessThan(fact.Answer.Length));
        Assert.That(chunks[^1].GetProperty("finish_reason").GetString(), Is.EqualTo("length"));
    }

    [Test]
    public async Task ModelsAndHealthDescribeTheServer()
    {
        using var models = JsonDocument.Parse(await _http.GetStringAsync("v1/models"));
        Assert.That(models.RootElement.GetProperty("data")[0].GetProperty("id").GetString(), Is.EqualTo("tiny"));
        using var health = await _http.GetAsync("health");
        Assert.That(health.StatusCode, Is.EqualTo(HttpStatusCode.OK));
    }

    [TestCase("{\"messages\": [", 400, null, "invalid_json")]
    [TestCase("[1, 2]", 400, null, "invalid_json")]
    [TestCase("{\"messages\": \"hi\"}", 400, "messages", "invalid_type")]
    [TestCase("{\"messages\": []}", 400, "messages", "invalid_value")]
    [TestCase("{\"messages\": [{\"role\": \"wizard\", \"content\": \"hi\"}]}", 400, "messages[0].role", "invalid_value")]
    [TestCase("{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"max_tokens\": -1}", 400, "max_tokens", "invalid_value")]
    [TestCase("{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"max_tokens\": 100000000000}", 400, "max_tokens", "invalid_value")]
    [TestCase("{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"max_completion_tokens\": \"ten\"}", 400, "max_completion_tokens", "invalid_type")]
    [TestCase("{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"temperature\": \"hot\"}", 400, "temperature", "invalid_type")]
    [TestCase("{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"stream\": 1}", 400, "stream", "invalid_type")]
    [TestCase("{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"model\": \"gpt-4o\"}", 404, "model", "model_not_found")]
    public async Task BadChatRequestsGetAnOpenAiErrorAndTheServerKeepsServing(string body, int status, string? param, string code)
    {
        using var response = await Post("v1/chat/completions", body);
        Assert.That((int)response.StatusCode, Is.EqualTo(status));
        using var error = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        var e = error.RootElement.GetProperty("error");
        Assert.That(e.GetProperty("message").GetString(), Is.Not.Empty);
        Assert.That(e.GetProperty("type").GetString(), Is.EqualTo("invalid_request_error"));
        Assert.That(e.GetProperty("param").ValueKind == JsonValueKind.Null ? null : e.GetProperty("param").GetString(), Is.EqualTo(param));
        Assert.That(e.GetProperty("code").GetString(), Is.EqualTo(code));

        ChatCompletion after = await _chat.CompleteChatAsync(new UserChatMessage(MemorisedBank.Facts[0].Question));
        Assert.That(after.Content.Single().Text, Is.EqualTo(MemorisedBank.Facts[0].Answer));
    }

    [Test]
    public async Task APromptLongerThanTheContextIsRefusedBeforeAnyEvent()
    {
        var question = string.Join(" ", Enumerable.Repeat("lantern", 200));
        using var response = await Post("v1/chat/completions", JsonSerializer.Serialize(new { messages = new[] { new { role = "user", content = question } }, stream = true }));
        Assert.That((int)response.StatusCode, Is.EqualTo(400));
        Assert.That(await response.Content.ReadAsStringAsync(), Does.Contain("context_length_exceeded"));
    }

    [Test]
    public async Task TheOfficialClientSeesAnUnknownModelAs404()
    {
        var other = new ChatClient("gpt-4o", new ApiKeyCredential("unused"), new OpenAIClientOptions { Endpoint = new Uri(_server.Address, "v1") });
        var e = await Assert.ThrowsAsync<ClientResultException>(() => other.CompleteChatAsync(new UserChatMessage("hi")));
        Assert.That(e!.Status, Is.EqualTo(404));
        Assert.That(e.Message, Does.Contain("model_not_found"));
    }

    [Test]
    public async Task TheServeCommandBindsLoopbackAndStopsCleanlyOnSigterm()
    {
        using var process = TuningCheckpointTests.StartCli(["serve", "--model", _memorised.ModelPath, "--memory", _memorised.BankPath, "--port", "0"]);
        try
        {
            var line = await process.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(30));
            Assert.That(line, Does.StartWith("mome serve: listening on http://127.0.0.1:"));
            var address = new Uri(line!.Split("listening on ")[1].Split(' ')[0]);
            using var health = await _http.GetAsync(new Uri(address, "health"));
            Assert.That(health.StatusCode, Is.EqualTo(HttpStatusCode.OK));
            using (var kill = Process.Start("kill", ["-TERM", process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
                await kill.WaitForExitAsync();
            await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(20));
            Assert.That(process.ExitCode, Is.EqualTo(0));
            Assert.That(await process.StandardOutput.ReadToEndAsync(), Does.Contain("mome serve: stopped"));
        }
        finally
        {
            if (!process.HasExited) process.Kill();
        }
    }

    private Task<HttpResponseMessage> Post(string path, string json) =>
        _http.PostAsync(path, new StringContent(json, Encoding.UTF8, "application/json"));
}
