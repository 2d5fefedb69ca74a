using System.CommandLine;
using Mome.Engines;
using Mome.Ilgpu;

namespace Mome.Cli;

/// <summary>`--engine native|ilgpu` and `--accelerator cpu|cuda|opencl`, shared by the commands
/// that run the forward pass; without --engine, MOME_ENGINE decides, else the native core when it
/// loads and the ILGPU engine (with a one-line notice on stderr) when it does not.</summary>
public sealed class EngineOptions
{
    public Option<string?> Engine { get; } = new("--engine")
    {
        Description = "native (the C++/CUDA core) or ilgpu (the managed fallback). Default: MOME_ENGINE, else native when it loads.",
    };

    public Option<string> Accelerator { get; } = new("--accelerator")
    {
        Description = "Where the ILGPU engine runs: cpu, cuda or opencl.", DefaultValueFactory = _ => "cpu",
    };

    public void AddTo(Command command)
    {
        command.Options.Add(Engine);
        command.Options.Add(Accelerator);
    }

    /// <summary>The engine the command line (or the environment) chose; prints the fallback notice.</summary>
    public EngineKind Resolve(ParseResult parse, CliIo io)
    {
        var requested = parse.GetValue(Engine) is { } e ? EngineSelection.Parse(e, "--engine") : (EngineKind?)null;
        var engine = EngineSelection.Resolve(requested, out var notice);
        if (notice is not null) io.Error.WriteLine(notice);
        return engine;
    }

    public IlgpuAccelerator AcceleratorOf(ParseResult parse) => parse.GetValue(Accelerator)!.Trim().ToLowerInvariant() switch
    {
        "cpu" => IlgpuAccelerator.Cpu,
        "cuda" => IlgpuAccelerator.Cuda,
        "opencl" => IlgpuAccelerator.OpenCL,
        var other => throw new ArgumentException($"--accelerator: '{other}' is not an accelerator (cpu, cuda or opencl)"),
    };

    /// <summary>Opens the model on the engine the command line (or the environment) chose.</summary>
    public EngineSession Open(ParseResult parse, CliIo io, string modelPath, SessionOptions options)
    {
        var engine = Resolve(parse, io);
        return EngineSelection.Open(engine, modelPath, options, AcceleratorOf(parse));
    }
}
