namespace Mome;

/// <summary>What went wrong in a native call; mirrors <c>mome_status</c>.</summary>
public enum MomeErrorCode
{
    InvalidArgument = -1,
    IoError = -2,
    FormatError = -3,
    Unsupported = -4,
    NotFound = -5,
    TypeMismatch = -6,
    OutOfRange = -7,
    OutOfMemory = -8,
    BackendError = -9,
    InternalError = -10,
    /// <summary>A CancellationToken (through the native abort callback) stopped the call.</summary>
    Cancelled = -11,
}

/// <summary>A native call failed; <see cref="Exception.Message"/> is the engine's message,
/// which names the file and the problem for file errors.</summary>
public sealed class MomeException : Exception
{
    public MomeException(MomeErrorCode code, string message) : base(message) => Code = code;

    public MomeErrorCode Code { get; }
}
