using BenchmarkDotNet.Attributes;
using ILGPU;
using ILGPU.Runtime;
using Mome.Engines;
using Mome.Ilgpu;
using Mome.Ilgpu.Kernels;

namespace Mome.Bench;

/// <summary>
/// The native engine against the ILGPU engine (CPU accelerator) per op: a decode step and a
/// 32-token prefill of a synthetic model, and one F32 matmul at the `small` preset's FFN shape
/// (2048 x 768) for 1 and 32 tokens. Native runs on 1 thread.
/// </summary>
public class EngineBenchmarks
{
    private const int Prompt = 32;
    private const int Rows = 2048;
    private const int Cols = 768;

    private string _dir = "";
    private EngineSession? _session;
    private int[] _prompt = [];
    private float[] _weight = [], _x = [], _y = [];
    private MemoryBuffer1D<float, Stride1D.Dense>? _dWeight, _dX, _dY;
    private LlamaKernelSet? _kernels;

    [Params(EngineKind.Native, EngineKind.Ilgpu)]
    public EngineKind Engine { get; set; }

    [Params("tiny", "mini")]
    public string Preset { get; set; } = "tiny";

    [Params(1, Prompt)]
    public int Tokens { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _dir = Path.Combine(Path.GetTempPath(), "mome-engine-bench-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_dir);
        var path = Path.Combine(_dir, "m.gguf");
        MomeModel.CreateSynthetic(SyntheticModelConfig.Preset(Preset), path, seed: 1);
        _session = EngineSelection.Open(Engine, path, new SessionOptions { ContextLength = 2 * Prompt + 1, Threads = 1 });
        var random = new Random(1);
        _prompt = Enumerable.Range(0, Prompt).Select(_ => random.Next(3, (int)_session.Config.VocabSize)).ToArray();
        _session.Session.Evaluate(_prompt);
        _weight = Enumerable.Range(0, Rows * Cols).Select(_ => (float)(random.NextDouble() * 2 - 1)).ToArray();
        _x = Enumerable.Range(0, Tokens * Cols).Select(_ => (float)(random.NextDouble() * 2 - 1)).ToArray();
        _y = new float[Tokens * Rows];
        if (Engine == EngineKind.Ilgpu)
        {
            var accelerator = IlgpuDevice.Get(IlgpuAccelerator.Cpu);
            _kernels = LlamaKernelSet.For(accelerator);
            _dWeight = accelerator.Allocate1D(_weight);
            _dX = accelerator.Allocate1D(_x);
            _dY = accelerator.Allocate1D<float>(_y.Length);
        }
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _session?.Dispose();
        _dWeight?.Dispose();
        _dX?.Dispose();
        _dY?.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    /// <summary>One token after the 32-token prompt (Tokens = 1), or the prompt itself again (Tokens = 32).</summary>
    [Benchmark]
    public float[] Forward()
    {
        var s = _session!.Session;
        if (Tokens == 1)
        {
            var logits = s.Evaluate(_prompt.AsSpan(0, 1));
            s.Truncate(0, Prompt);
            return logits;
        }
        s.Truncate(0, 0);
        return s.Evaluate(_prompt);
    }

    /// <summary>y = W x, W F32 2048 x 768 (the synthetic model's preset does not matter here).</summary>
    [Benchmark]
    public void Matmul()
    {
        if (Engine == EngineKind.Native)
        {
            MomeOps.MatMul(_weight, Rows, Cols, _x, Tokens, _y, threads: 1);
            return;
        }
        _kernels!.Matmul(_dWeight!.View, _dX!.View, _dY!.View, Rows, Cols, Tokens);
        _dY.View.BaseView.CopyToCPU(_y);
    }
}
