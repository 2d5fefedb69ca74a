using Microsoft.Win32.SafeHandles;
using Mome.Interop;

namespace Mome.Native;

/// <summary>Owns a <c>mome_session*</c> and keeps the model it reads alive until it is freed.</summary>
internal sealed class SafeSessionHandle : SafeHandleZeroOrMinusOneIsInvalid
{
    private SafeModelHandle? _model;

    private SafeSessionHandle() : base(ownsHandle: true) { }

    public static unsafe SafeSessionHandle Create(SafeModelHandle model, MomeSessionParams parameters)
    {
        var session = new SafeSessionHandle();
        var added = false;
        model.DangerousAddRef(ref added);
        try
        {
            IntPtr raw;
            Status.Check(NativeMethods.mome_session_create(model.DangerousGetHandle(), parameters, &raw));
            session.SetHandle(raw);
            session._model = model;
            return session;
        }
        catch
        {
            if (added) model.DangerousRelease();
            throw;
        }
    }

    /// <summary>Runs <paramref name="call"/> with the raw pointer while keeping the handle alive.</summary>
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

    protected override bool ReleaseHandle()
    {
        NativeMethods.mome_session_free(handle);
        _model?.DangerousRelease();
        return true;
    }
}
