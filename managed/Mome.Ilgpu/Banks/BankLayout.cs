namespace Mome.Ilgpu.Banks;

/// <summary>Where one table of a bank file lies: bytes [Offset, Offset + Size) of the file
/// (checked to lie inside it and to match its checksum) and its shape, outermost first.</summary>
internal sealed record BankTable(ulong Offset, ulong Size, long[] Shape);

/// <summary>One memory layer of a bank file: the model block it sits in, its tables and its
/// locality gate (signatures [rows x key_dim], F32; a threshold at or below -1 is off).</summary>
internal sealed record BankLayerLayout(int Block, BankTable Wq, BankTable Centre, BankTable Keys, BankTable A, BankTable B,
    BankTable Gate, float GateThreshold);

/// <summary>A bank file's parameters and tables, as <see cref="BankFileReader"/> verified them.</summary>
internal sealed record BankLayout(MemoryOptions Options, IReadOnlyList<BankLayerLayout> Layers);
