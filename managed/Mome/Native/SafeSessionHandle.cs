using Mome.Interop;

namespace Mome.Native;

/// <summary>Owns a <c>mome_session*</c> and keeps the model (and bank) it reads alive until it is freed.</summary>
internal sealed class SafeSessionHandle : MomeSafeHandle
{
    private SafeModelHandle? _model;
    private SafeBankHandle? _bank;

    private SafeSessionHandle() { }

    public static unsafe SafeSessionHandle Create(SafeModelHandle model, MomeSessionParams parameters, SafeBankHandle? bank)
    {
        var session = new SafeSessionHandle();
        bool modelAdded = false, bankAdded = false;
        try
        {
            model.DangerousAddRef(ref modelAdded);
            if (bank is not null)
            {
                bank.DangerousAddRef(ref bankAdded);
                parameters.Bank = bank.DangerousGetHandle();
            }
            IntPtr raw;
            Status.Check(NativeMethods.mome_session_create(model.DangerousGetHandle(), &parameters, &raw));
            session.SetHandle(raw);
            session._model = model;
            session._bank = bank;
            return session;
        }
        catch
        {
            if (modelAdded) model.DangerousRelease();
            if (bankAdded) bank!.DangerousRelease();
            throw;
        }
    }


    protected override bool ReleaseHandle()
    {
        NativeMethods.mome_session_free(handle);
        _bank?.DangerousRelease();
        _model?.DangerousRelease();
        return true;
    }
}
