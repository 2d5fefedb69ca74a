using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Mome.AI;

namespace Mome.Cli.Serve;

/// <summary>
/// The OpenAI-compatible HTTP server of `mome serve`: GET /v1/models, POST /v1/chat/completions,
/// POST /v1/completions (both streamed as server-sent events with "stream": true) and
/// GET /health, over one <see cref="BatchedGenerator"/> that decodes the running requests
/// together. Errors are OpenAI error bodies.
/// </summary>
public sealed class MomeServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly MomeModel _model;
    private readonly MemoryBank? _bank;
    private readonly BatchedGenerator _generator;

    private MomeServer(WebApplication app, MomeModel model, MemoryBank? bank, BatchedGenerator generator, Uri address)
    {
        _app = app;
        _model = model;
        _bank = bank;
        _generator = generator;
        Address = address;
    }

    /// <summary>The generator every request decodes through.</summary>
    public BatchedGenerator Generator => _generator;

    /// <summary>Where it listens, such as http://127.0.0.1:8080/.</summary>
    public Uri Address { get; }

    /// <summary>Opens the model (and bank), binds and starts serving.</summary>
    public static async Task<MomeServer> StartAsync(ServeOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.Parallel < 1) throw new ArgumentException($"--parallel {options.Parallel} must be at least 1");
        if (options.Queue < 0) throw new ArgumentException($"--queue {options.Queue} must be at least 0");
        if (options.Port is < 0 or > 65535) throw new ArgumentException($"--port {options.Port} is not a TCP port (0..65535)");
        if (options.MaxTokens < 0) throw new ArgumentException($"--max-tokens {options.MaxTokens} must be at least 0");
        var model = MomeModel.Open(options.ModelPath);
        MemoryBank? bank = null;
        BatchedGenerator? generator = null;
        try
        {
            bank = options.MemoryPath is { } memory ? MemoryBank.Load(model, memory) : null;
            generator = new BatchedGenerator(model, new BatchedGeneratorOptions
            {
                MaxSequences = options.Parallel, ContextLength = options.ContextLength, Threads = options.Threads, Memory = bank,
            });
            var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [] });
            builder.Logging.ClearProviders();
            builder.WebHost.UseUrls($"http://{(options.Host.Contains(':') ? $"[{options.Host}]" : options.Host)}:{options.Port}");
            builder.Services.Configure<HostOptions>(h => h.ShutdownTimeout = TimeSpan.FromSeconds(5));
            var app = builder.Build();
            var chat = new MomeChatClient(generator, Path.GetFileNameWithoutExtension(model.Path));
            var endpoints = new OpenAiEndpoints(chat, generator, options.Parallel + options.Queue,
                options.MaxTokens > 0 ? options.MaxTokens : generator.ContextLength);
            app.Use(ErrorsAsOpenAiBodies);
            app.MapGet("/health", () => Results.Json(new { status = "ok" }));
            app.MapGet("/v1/models", () => Results.Text(endpoints.Models().ToJsonString(), "application/json"));
            app.MapPost("/v1/chat/completions", endpoints.ChatCompletionsAsync);
            app.MapPost("/v1/completions", endpoints.CompletionsAsync);
            app.MapFallback(context => new OpenAiError(404, $"no endpoint {context.Request.Method} {context.Request.Path}", code: "unknown_url")
                .WriteAsync(context.Response));
            await app.StartAsync(cancellationToken);
            var bound = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
            return new MomeServer(app, model, bank, generator, new Uri(bound.EndsWith('/') ? bound : bound + "/"));
        }
        catch
        {
            generator?.Dispose();
            bank?.Dispose();
            model.Dispose();
            throw;
        }
    }

    // OpenAiError becomes its body; anything else a 500 server_error (when nothing was sent yet).
    private static async Task ErrorsAsOpenAiBodies(HttpContext context, RequestDelegate next)
    {
        try
        {
            await next(context);
        }
        catch (OpenAiError e) when (!context.Response.HasStarted)
        {
            await e.WriteAsync(context.Response);
        }
        catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
        {
        }
        catch (Exception e) when (!context.Response.HasStarted && e is not OperationCanceledException)
        {
            await new OpenAiError(500, $"the server failed: {e.Message}", type: "server_error", code: "internal_error").WriteAsync(context.Response);
        }
    }

    /// <summary>Returns when <paramref name="cancellationToken"/> is cancelled or the host is
    /// told to stop (SIGTERM, Ctrl-C).</summary>
    public async Task WaitAsync(CancellationToken cancellationToken)
    {
        using var either = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _app.Lifetime.ApplicationStopping);
        try
        {
            await Task.Delay(Timeout.Infinite, either.Token);
        }
        catch (OperationCanceledException)
        {
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
        _generator.Dispose();
        _bank?.Dispose();
        _model.Dispose();
    }
}
