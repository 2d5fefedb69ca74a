using System.Runtime.InteropServices;
using Mome.Interop;

namespace Mome.Native;

/// <summary>The one funnel every native status goes through.</summary>
internal static unsafe class Status
{
    public static void Check(MomeStatus status)
    {
        if (status == MomeStatus.Ok) return;
        var message = Marshal.PtrToStringUTF8((IntPtr)NativeMethods.mome_last_error());
        if (string.IsNullOrEmpty(message))
            message = Marshal.PtrToStringUTF8((IntPtr)NativeMethods.mome_status_to_string(status)) ?? status.ToString();
        if (status == MomeStatus.Cancelled)
            throw new OperationCanceledException(message, new MomeException(MomeErrorCode.Cancelled, message), NativeAbort.CurrentToken);
        throw new MomeException((MomeErrorCode)(int)status, message);
    }

    public static string Utf8(byte* text) => Marshal.PtrToStringUTF8((IntPtr)text) ?? string.Empty;

    public static string Utf8(byte* text, ulong length) =>
        length == 0 ? string.Empty : System.Text.Encoding.UTF8.GetString(text, checked((int)length));
}
