using Mome.Interop;

namespace Mome.Native;

/// <summary>Owns a <c>mome_finetuner*</c> and keeps the model it trains alive until it is freed.</summary>
internal sealed class SafeFinetunerHandle : MomeSafeHandle
{
    private SafeModelHandle? _model;

    private SafeFinetunerHandle() { }

    /// <summary>Calls <paramref name="create"/> with the model pointer; the handle owns what it returns.</summary>
    public static SafeFinetunerHandle Create(SafeModelHandle model, Func<IntPtr, IntPtr> create)
    {
        var finetuner = new SafeFinetunerHandle();
        var added = false;
        model.DangerousAddRef(ref added);
        try
        {
            finetuner.SetHandle(create(model.DangerousGetHandle()));
            finetuner._model = model;
            return finetuner;
        }
        catch
        {
            if (added) model.DangerousRelease();
            throw;
        }
    }

    protected override bool ReleaseHandle()
    {
        NativeMethods.mome_finetuner_free(handle);
        _model?.DangerousRelease();
        return true;
    }
}
