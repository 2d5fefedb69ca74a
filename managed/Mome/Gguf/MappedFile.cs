using System.IO.MemoryMappedFiles;

namespace Mome.Gguf;

/// <summary>
/// A whole file mapped read-only, opened with the native reader's checks and messages ("PATH:
/// cannot open: ...", "PATH: is a directory, not a file"): what the managed GGUF and bank
/// readers parse. An empty file has no mapping (<see cref="Data"/> is null).
/// </summary>
internal sealed unsafe class MappedFile : IDisposable
{
    private readonly MemoryMappedFile? _map;
    private readonly MemoryMappedViewAccessor? _view;

    public MappedFile(string path)
    {
        Path = path;
        if (Directory.Exists(path)) throw new MomeException(MomeErrorCode.IoError, $"{path}: is a directory, not a file");
        FileStream stream;
        try
        {
            stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            var why = e is FileNotFoundException or DirectoryNotFoundException ? "No such file or directory"
                : e is UnauthorizedAccessException ? "Permission denied" : e.Message;
            throw new MomeException(MomeErrorCode.IoError, $"{path}: cannot open: {why}");
        }
        using (stream)
        {
            Size = (ulong)stream.Length;
            if (Size == 0) return;
            _map = MemoryMappedFile.CreateFromFile(stream, null, 0, MemoryMappedFileAccess.Read, HandleInheritability.None, leaveOpen: false);
        }
        _view = _map.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
        byte* p = null;
        _view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
        Data = p + _view.PointerOffset;
    }

    public string Path { get; }
    public ulong Size { get; }

    /// <summary>The first byte (valid while the file is open).</summary>
    public byte* Data { get; }

    /// <summary>Bytes [offset, offset + count) (count below 2 GiB; the caller checked the range).</summary>
    public ReadOnlySpan<byte> Span(ulong offset, ulong count) => new(Data + offset, checked((int)count));

    public void Dispose()
    {
        if (_view is not null)
        {
            _view.SafeMemoryMappedViewHandle.ReleasePointer();
            _view.Dispose();
        }
        _map?.Dispose();
    }
}
