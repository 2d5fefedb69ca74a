using Mome.Interop;

namespace Mome.Native;

/// <summary>Owns a <c>mome_bank*</c> and keeps the model it was made for alive until it is freed.</summary>
internal sealed class SafeBankHandle : MomeSafeHandle
{
    private SafeModelHandle? _model;

    private SafeBankHandle() { }

    /// <summary>Calls <paramref name="create"/> with the model pointer; the handle owns what it returns.</summary>
    public static SafeBankHandle Create(SafeModelHandle model, Func<IntPtr, IntPtr> create)
    {
        var bank = new SafeBankHandle();
        var added = false;
        model.DangerousAddRef(ref added);
        try
        {
            bank.SetHandle(create(model.DangerousGetHandle()));
            bank._model = model;
            return bank;
        }
        catch
        {
            if (added) model.DangerousRelease();
            throw;
        }
    }


    protected override bool ReleaseHandle()
    {
        NativeMethods.mome_bank_free(handle);
        _model?.DangerousRelease();
        return true;
    }
}
