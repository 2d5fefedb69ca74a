using Microsoft.Win32.SafeHandles;

namespace Mome.Native;

/// <summary>What every Mome handle shares: native calls that keep the handle alive for
/// their duration, and ObjectDisposedException instead of a dangling pointer after Dispose.</summary>
internal abstract class MomeSafeHandle : SafeHandleZeroOrMinusOneIsInvalid
{
    protected MomeSafeHandle() : base(ownsHandle: true) { }

    /// <summary>Runs <paramref name="call"/> with the raw pointer while the handle cannot be released.</summary>
    public T Use<T>(Func<IntPtr, T> call)
    {
        var added = false;
        try
        {
            DangerousAddRef(ref added);
            return call(handle);
        }
        finally
        {
            if (added) DangerousRelease();
        }
    }
}
