using Mome.Interop;

namespace Mome.Native;

/// <summary>Owns a <c>mome_model*</c>.</summary>
internal sealed class SafeModelHandle : MomeSafeHandle
{
    private SafeModelHandle() { }

    public static unsafe SafeModelHandle Open(string path, bool metadataOnly)
    {
        MomeNativeLibrary.EnsureLoaded();
        var parameters = new MomeModelParams { StructSize = (uint)sizeof(MomeModelParams) };
        Status.Check(NativeMethods.mome_model_default_params(&parameters));
        parameters.MetadataOnly = metadataOnly ? (byte)1 : (byte)0;
        IntPtr model;
        var utf8 = System.Text.Encoding.UTF8.GetBytes(path + "\0");
        fixed (byte* p = utf8)
            Status.Check(NativeMethods.mome_model_open(p, &parameters, &model));
        var handle = new SafeModelHandle();
        handle.SetHandle(model);
        return handle;
    }


    protected override bool ReleaseHandle()
    {
        NativeMethods.mome_model_free(handle);
        return true;
    }
}
