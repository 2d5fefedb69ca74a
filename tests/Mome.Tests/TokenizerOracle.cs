using System.Runtime.InteropServices;
using System.Text;
using LLama;
using LLama.Common;
using LLama.Native;

namespace Mome.Tests;

/// <summary>
/// llama.cpp's tokenizer for one GGUF file, loaded vocab-only through LLamaSharp: the oracle
/// for <see cref="MomeTokenizer"/>. LLamaSharp keeps <c>llama_detokenize</c> internal, so it is
/// called through the already loaded libllama.
/// </summary>
internal sealed unsafe class TokenizerOracle : IDisposable
{
    private static readonly StringBuilder LlamaLog = new();
    private static IntPtr _detokenize;   // int32_t llama_detokenize(const llama_vocab*, const llama_token*, int32_t, char*, int32_t, bool, bool)
    private static IntPtr _modelGetVocab; // const llama_vocab* llama_model_get_vocab(const llama_model*)

    private readonly LLamaWeights _weights;

    private TokenizerOracle(LLamaWeights weights) => _weights = weights;

    public SafeLlamaModelHandle.Vocabulary Vocab => _weights.NativeHandle.Vocab;

    public static TokenizerOracle Load(string path)
    {
        // Must precede the first native call: a failed load explains itself only here (ORACLE.md).
        if (!NativeLibraryConfig.LLama.LibraryHasLoaded)
            NativeLibraryConfig.All.WithLogCallback((_, message) =>
            {
                lock (LlamaLog) LlamaLog.Append(message);
            });
        try
        {
            return new TokenizerOracle(LLamaWeights.LoadFromFile(new ModelParams(path) { VocabOnly = true, GpuLayerCount = 0 }));
        }
        catch (Exception e)
        {
            string log;
            lock (LlamaLog) log = LlamaLog.ToString();
            throw new InvalidOperationException($"llama.cpp refused {path}: {e.Message}\n{log}", e);
        }
    }

    public int[] Tokenize(string text, bool addSpecial, bool parseSpecial) =>
        [.. _weights.Tokenize(text, addSpecial, parseSpecial, Encoding.UTF8).Select(t => (int)t)];

    /// <summary><c>llama_token_to_piece(token, lstrip: 0, special)</c>.</summary>
    public byte[] Piece(int token, bool special)
    {
        var buffer = new byte[64];
        var n = (int)_weights.NativeHandle.TokenToSpan(token, buffer, 0, special);
        if (n > buffer.Length)
        {
            buffer = new byte[n];
            n = (int)_weights.NativeHandle.TokenToSpan(token, buffer, 0, special);
        }
        return buffer[..n];
    }

    /// <summary><c>llama_detokenize(tokens, remove_special, unparse_special)</c> as UTF-8 text.</summary>
    public string Detokenize(int[] tokens, bool removeSpecial, bool unparseSpecial)
    {
        ResolveExports();
        var vocab = ((delegate* unmanaged<IntPtr, IntPtr>)_modelGetVocab)(_weights.NativeHandle.DangerousGetHandle());
        var detokenize = (delegate* unmanaged<IntPtr, int*, int, byte*, int, byte, byte, int>)_detokenize;
        var buffer = new byte[tokens.Length * 16 + 64];
        while (true)
        {
            int n;
            fixed (int* t = tokens)
            fixed (byte* b = buffer)
                n = detokenize(vocab, t, tokens.Length, b, buffer.Length, removeSpecial ? (byte)1 : (byte)0, unparseSpecial ? (byte)1 : (byte)0);
            if (n >= 0) return Encoding.UTF8.GetString(buffer, 0, n);
            buffer = new byte[-n]; // a negative result is the size needed
        }
    }

    public void Dispose() => _weights.Dispose();

    /// <summary>The libllama LLamaSharp loaded, found among the process's mapped files.</summary>
    private static void ResolveExports()
    {
        if (_detokenize != IntPtr.Zero) return;
        var path = File.ReadLines("/proc/self/maps")
            .Select(line => line.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .Where(fields => fields.Length >= 6 && Path.GetFileName(fields[5]) == "libllama.so")
            .Select(fields => fields[5])
            .FirstOrDefault() ?? throw new InvalidOperationException("libllama.so is not loaded");
        var library = NativeLibrary.Load(path); // the already loaded instance (dlopen counts references)
        _modelGetVocab = NativeLibrary.GetExport(library, "llama_model_get_vocab");
        _detokenize = NativeLibrary.GetExport(library, "llama_detokenize");
    }
}
