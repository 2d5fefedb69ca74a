using System.CommandLine;
using Mome.Cli.Commands;
using Mome.Cli.Serve;
using Spectre.Console;

namespace Mome.Cli;

/// <summary>The `mome` command tree. Output goes to the writers given, so tests can run
/// commands in-process.</summary>
public static class MomeCli
{
    public static int Run(string[] args, TextWriter output, TextWriter error)
    {
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(output),
            Ansi = ReferenceEquals(output, Console.Out) ? AnsiSupport.Detect : AnsiSupport.No,
            ColorSystem = ReferenceEquals(output, Console.Out) ? ColorSystemSupport.Detect : ColorSystemSupport.NoColors,
        });
        if (!ReferenceEquals(output, Console.Out) || Console.IsOutputRedirected)
            console.Profile.Width = 160; // tables in logs and pipes need not wrap at 80 columns
        var io = new CliIo(output, error, console);
        var root = new RootCommand("Mome: Mixture of Memory Experts on a frozen Llama model.")
        {
            ModelCommands.Create(io),
            DevicesCommand.Create(io),
            BenchCommands.Create(io),
            LogitsCommand.Create(io),
            GenerateCommand.Create(io),
            MemoryCommands.Create(io),
            FactsCommands.Create(io),
            DemoCommand.Create(io),
            ServeCommand.Create(io),
        };
        foreach (var command in TuningCommands.Create(io)) root.Subcommands.Add(command);
        return root.Parse(args).Invoke(new InvocationConfiguration { Output = output, Error = error });
    }
}

/// <summary>Where a command writes: plain text/JSON, errors, and rich output for people.</summary>
public sealed record CliIo(TextWriter Output, TextWriter Error, IAnsiConsole Console)
{
    /// <summary>As <see cref="Guard"/> for asynchronous bodies.</summary>
    public async Task<int> GuardAsync(Func<Task> body)
    {
        try
        {
            await body();
            return 0;
        }
        catch (OperationCanceledException)
        {
            await Error.WriteLineAsync("mome: cancelled");
            return 130;
        }
        catch (Exception e) when (e is CliFailure or MomeException or IOException or InvalidDataException or UnauthorizedAccessException or DllNotFoundException or ArgumentException)
        {
            await Error.WriteLineAsync($"mome: {e.Message}");
            return 1;
        }
    }

    /// <summary>Runs a command body; engine errors become a one-line message and exit code 1.</summary>
    public int Guard(Action body)
    {
        try
        {
            body();
            return 0;
        }
        catch (Exception e) when (e is CliFailure or MomeException or IOException or InvalidDataException or UnauthorizedAccessException or DllNotFoundException or ArgumentException)
        {
            Error.WriteLine($"mome: {e.Message}");
            return 1;
        }
    }
}

/// <summary>A command that ran but did not achieve what it promises (exit code 1, one line).</summary>
public sealed class CliFailure(string message) : Exception(message);
