using LLama;
using LLama.Native;

namespace Mome.Bench;

/// <summary>llama.cpp's own quantizer (through LLamaSharp) as the maker of benchmark models
/// in the mixes Mome does not write itself (Q4_K_M).</summary>
public static class LlamaQuantize
{
    public static void Run(string source, string destination, LLamaFtype ftype)
    {
        if (!NativeLibraryConfig.LLama.LibraryHasLoaded) NativeLibraryConfig.All.WithLogCallback((_, _) => { });
        NativeApi.llama_empty_call();  // LLamaQuantizer calls into libllama before loading it (ORACLE.md)
        if (!LLamaQuantizer.Quantize(source, destination, ftype, nthread: 1, allowRequantize: false, quantizeOutputTensor: true))
            throw new InvalidOperationException($"llama.cpp could not quantize {source} to {ftype}");
    }
}
