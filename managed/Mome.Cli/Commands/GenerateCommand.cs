using System.CommandLine;
using Mome.Engines;
using Mome.Ilgpu;

namespace Mome.Cli.Commands;

/// <summary>`mome generate`: stream a continuation of a prompt.</summary>
public static class GenerateCommand
{
    public static Command Create(CliIo io)
    {
        var model = new Option<FileInfo>("--model") { Description = "A Llama GGUF model.", Required = true };
        var prompt = new Option<string>("--prompt") { Description = "The text to continue.", Required = true };
        var memory = new Option<FileInfo?>("--memory") { Description = "A memory bank made for the model." };
        var maxTokens = new Option<int>("--max-tokens") { Description = "Most tokens to generate.", DefaultValueFactory = _ => 64 };
        var temperature = new Option<float>("--temperature") { Description = "0: greedy.", DefaultValueFactory = _ => 0f };
        var topK = new Option<int>("--top-k") { Description = "Sample from the K most likely (0: all).", DefaultValueFactory = _ => 0 };
        var topP = new Option<float>("--top-p") { Description = "Nucleus sampling threshold.", DefaultValueFactory = _ => 1f };
        var seed = new Option<int>("--seed") { DefaultValueFactory = _ => 42 };
        var threads = new Option<int>("--threads") { Description = "CPU threads (0: one per core).", DefaultValueFactory = _ => 0 };
        var cuda = new Option<int?>("--cuda") { Description = "Run on this CUDA device (needs libmome_cuda)." };
        var command = new Command("generate", "Continue a prompt, streaming the text.")
        {
            model, prompt, memory, maxTokens, temperature, topK, topP, seed, threads, cuda,
        };
        var engine = new EngineOptions();
        engine.AddTo(command);
        command.SetAction(async (parse, cancellationToken) => await io.GuardAsync(async () =>
        {
            var path = parse.GetValue(model)!.FullName;
            using var m = engine.Resolve(parse, io) == EngineKind.Native ? MomeModel.Open(path) : null;
            using var ilgpu = m is null ? IlgpuModel.Open(path, engine.AcceleratorOf(parse)) : null;
            if (ilgpu is not null && parse.GetValue(cuda) is not null)
                throw new ArgumentException("--cuda needs the native engine (the ILGPU engine picks its device with --accelerator)");
            var bankFile = parse.GetValue(memory)?.FullName;
            using var bank = bankFile is not null && m is not null ? MemoryBank.Load(m, bankFile) : null;
            using var ilgpuBank = bankFile is not null && ilgpu is not null ? IlgpuBank.Load(ilgpu, bankFile) : null;
            using var generator = ilgpu is not null
                ? new TextGenerator(new IlgpuSession(ilgpu, new SessionOptions { Threads = parse.GetValue(threads) }, ilgpuBank), ilgpu.Tokenizer)
                : new TextGenerator(m!, SessionOptions.OnDevice(parse.GetValue(cuda)) with { Threads = parse.GetValue(threads), Memory = bank });
            var options = new GenerationOptions
            {
                MaxTokens = parse.GetValue(maxTokens), Temperature = parse.GetValue(temperature), TopK = parse.GetValue(topK),
                TopP = parse.GetValue(topP), Seed = parse.GetValue(seed),
            };
            await foreach (var piece in generator.GenerateAsync(parse.GetValue(prompt)!, options, cancellationToken))
            {
                io.Output.Write(piece);
                await io.Output.FlushAsync(cancellationToken);
            }
            io.Output.WriteLine();
        }));
        return command;
    }
}
