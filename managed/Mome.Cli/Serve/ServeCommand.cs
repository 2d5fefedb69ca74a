using System.CommandLine;

namespace Mome.Cli.Serve;

/// <summary>`mome serve`: the OpenAI-compatible server (<see cref="MomeServer"/>).</summary>
public static class ServeCommand
{
    public static Command Create(CliIo io)
    {
        var defaults = new ServeOptions { ModelPath = "" };
        var model = new Option<FileInfo>("--model") { Description = "The model (GGUF).", Required = true };
        var memory = new Option<FileInfo?>("--memory") { Description = "A memory bank made by `mome tune` to answer with." };
        var host = new Option<string>("--host") { Description = "The address to listen on (loopback by default).", DefaultValueFactory = _ => defaults.Host };
        var port = new Option<int>("--port") { Description = "The TCP port (0: a free one).", DefaultValueFactory = _ => defaults.Port };
        var parallel = new Option<int>("--parallel") { Description = "Requests decoded together in one batched step.", DefaultValueFactory = _ => defaults.Parallel };
        var queue = new Option<int>("--queue") { Description = "Requests that may wait for a free sequence (429 beyond).", DefaultValueFactory = _ => defaults.Queue };
        var context = new Option<int>("--ctx") { Description = "Positions per request, prompt plus completion (0: the model's context, at most 4096).", DefaultValueFactory = _ => 0 };
        var maxTokens = new Option<int>("--max-tokens") { Description = "The largest max_tokens a request may ask for (0: the context length).", DefaultValueFactory = _ => 0 };
        var threads = new Option<int>("--threads") { DefaultValueFactory = _ => 0 };
        var command = new Command("serve", "Serve the model (and bank) over HTTP with OpenAI's API: /v1/chat/completions, /v1/completions, /v1/models, /health.")
        {
            model, memory, host, port, parallel, queue, context, maxTokens, threads,
        };
        command.SetAction((parse, cancellationToken) => io.GuardAsync(async () =>
        {
            var options = new ServeOptions
            {
                ModelPath = parse.GetValue(model)!.FullName, MemoryPath = parse.GetValue(memory)?.FullName, Host = parse.GetValue(host)!,
                Port = parse.GetValue(port), Parallel = parse.GetValue(parallel), Queue = parse.GetValue(queue),
                ContextLength = parse.GetValue(context), MaxTokens = parse.GetValue(maxTokens), Threads = parse.GetValue(threads),
            };
            await using var server = await MomeServer.StartAsync(options, cancellationToken);
            await io.Output.WriteLineAsync($"mome serve: listening on {server.Address} (model {Path.GetFileName(options.ModelPath)}" +
                (options.MemoryPath is null ? "" : $", memory {Path.GetFileName(options.MemoryPath)}") + "); Ctrl-C or SIGTERM stops it");
            await io.Output.FlushAsync(cancellationToken);
            await server.WaitAsync(cancellationToken);
            await io.Output.WriteLineAsync("mome serve: stopped");
        }));
        return command;
    }
}
