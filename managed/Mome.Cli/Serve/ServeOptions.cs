namespace Mome.Cli.Serve;

/// <summary>What `mome serve` serves and its limits.</summary>
public sealed record ServeOptions
{
    public required string ModelPath { get; init; }
    public string? MemoryPath { get; init; }
    /// <summary>Loopback by default; another address exposes the server to the network.</summary>
    public string Host { get; init; } = "127.0.0.1";
    /// <summary>0 picks a free port.</summary>
    public int Port { get; init; } = 8080;
    /// <summary>Requests decoded together in one batched step.</summary>
    public int Parallel { get; init; } = 8;
    /// <summary>Requests that may wait for a free sequence; beyond that the server answers 429.</summary>
    public int Queue { get; init; } = 64;
    /// <summary>Positions per sequence (prompt plus completion); 0 means the model's context.</summary>
    public int ContextLength { get; init; }
    /// <summary>The largest max_tokens a request may ask for; 0 means the context length.</summary>
    public int MaxTokens { get; init; }
    public int Threads { get; init; }
}
