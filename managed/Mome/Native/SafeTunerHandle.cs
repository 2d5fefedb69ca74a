using Mome.Interop;

namespace Mome.Native;

/// <summary>Owns a <c>mome_tuner*</c> and keeps the bank it tunes alive until it is freed.</summary>
internal sealed class SafeTunerHandle : MomeSafeHandle
{
    private SafeBankHandle? _bank;

    private SafeTunerHandle() { }

    /// <summary>Calls <paramref name="create"/> with the bank pointer; the handle owns what it returns.</summary>
    public static SafeTunerHandle Create(SafeBankHandle bank, Func<IntPtr, IntPtr> create)
    {
        var tuner = new SafeTunerHandle();
        var added = false;
        bank.DangerousAddRef(ref added);
        try
        {
            tuner.SetHandle(create(bank.DangerousGetHandle()));
            tuner._bank = bank;
            return tuner;
        }
        catch
        {
            if (added) bank.DangerousRelease();
            throw;
        }
    }

    protected override bool ReleaseHandle()
    {
        NativeMethods.mome_tuner_free(handle);
        _bank?.DangerousRelease();
        return true;
    }
}
