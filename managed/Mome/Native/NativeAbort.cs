using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Mome.Interop;

namespace Mome.Native;

/// <summary>
/// A CancellationToken wired to the native abort callback (mome_set_abort_callback), which is
/// per thread: while a scope is open, native calls made on this thread poll the token (once
/// per layer of a decode or a tuning step, per table of a new bank, per write of a file before
/// its commit) and stop with MOME_STATUS_CANCELLED, which <see cref="Status"/> turns into an
/// <see cref="OperationCanceledException"/>. Scopes nest: an inner one also stops for the
/// outer tokens. Open a scope around synchronous native work only, never across an await.
/// </summary>
internal sealed unsafe class NativeAbort : IDisposable
{
    [ThreadStatic] private static NativeAbort? t_current;

    private readonly NativeAbort? _outer;
    private readonly CancellationToken _token;
    private GCHandle _self;

    private NativeAbort(CancellationToken token, NativeAbort? outer)
    {
        _token = token;
        _outer = outer;
        _self = GCHandle.Alloc(this);
    }

    /// <summary>The token of the innermost open scope on this thread (none: default).</summary>
    public static CancellationToken CurrentToken => t_current?._token ?? default;

    /// <summary>Opens a scope for <paramref name="token"/> on the calling thread; a token that
    /// cannot be cancelled opens none (null, which <c>using</c> accepts).</summary>
    public static NativeAbort? Scope(CancellationToken token)
    {
        if (!token.CanBeCanceled) return null;
        MomeNativeLibrary.EnsureLoaded();
        var scope = new NativeAbort(token, t_current);
        scope.Install();
        t_current = scope;
        return scope;
    }

    public void Dispose()
    {
        if (!_self.IsAllocated) return;
        t_current = _outer;
        if (_outer is null) NativeMethods.mome_set_abort_callback(null, null);
        else _outer.Install();
        _self.Free();
    }

    private bool Cancelled => _token.IsCancellationRequested || (_outer?.Cancelled ?? false);

    private void Install() => NativeMethods.mome_set_abort_callback(&Poll, (void*)GCHandle.ToIntPtr(_self));

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static byte Poll(void* userData) =>
        ((NativeAbort)GCHandle.FromIntPtr((IntPtr)userData).Target!).Cancelled ? (byte)1 : (byte)0;
}
