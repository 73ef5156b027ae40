using System.Runtime.InteropServices;
using ArmCrc = System.Runtime.Intrinsics.Arm.Crc32;
using X86Crc = System.Runtime.Intrinsics.X86.Sse42;

namespace RaftKv.Storage;

/// <summary>
/// CRC-32C (Castagnoli, polynomial 0x1EDC6F41 reflected as 0x82F63B78), the checksum of every WAL record and snapshot.
/// Uses the SSE4.2 or ARMv8 CRC instructions when present and a table otherwise; all three give identical results.
/// </summary>
public static class Crc32C
{
    private const uint Polynomial = 0x82F63B78u;
    private static readonly uint[] Table = BuildTable();

    /// <summary>The checksum of <paramref name="data"/>.</summary>
    public static uint Compute(ReadOnlySpan<byte> data) => Append(0, data);

    /// <summary>
    /// Continues a checksum: <c>Append(Compute(a), b) == Compute(a + b)</c>. Start from 0 for an empty prefix.
    /// </summary>
    public static uint Append(uint crc, ReadOnlySpan<byte> data) => ~Update(~crc, data);

    private static uint Update(uint state, ReadOnlySpan<byte> data)
    {
        if (X86Crc.X64.IsSupported)
        {
            while (data.Length >= 8)
            {
                state = (uint)X86Crc.X64.Crc32(state, MemoryMarshal.Read<ulong>(data));
                data = data[8..];
            }
            foreach (var b in data) state = X86Crc.Crc32(state, b);
            return state;
        }
        if (ArmCrc.Arm64.IsSupported)
        {
            while (data.Length >= 8)
            {
                state = ArmCrc.Arm64.ComputeCrc32C(state, MemoryMarshal.Read<ulong>(data));
                data = data[8..];
            }
            foreach (var b in data) state = ArmCrc.ComputeCrc32C(state, b);
            return state;
        }
        return UpdateSoftware(state, data);
    }

    /// <summary>The table-driven path, exposed so tests can check it against the hardware one.</summary>
    internal static uint ComputeSoftware(ReadOnlySpan<byte> data) => ~UpdateSoftware(~0u, data);

    private static uint UpdateSoftware(uint state, ReadOnlySpan<byte> data)
    {
        var table = Table;
        foreach (var b in data) state = table[(byte)(state ^ b)] ^ (state >> 8);
        return state;
    }

    private static uint[] BuildTable()
    {
        var table = new uint[256];
        for (uint i = 0; i < 256; i++)
        {
            var c = i;
            for (var k = 0; k < 8; k++) c = (c & 1) != 0 ? (c >> 1) ^ Polynomial : c >> 1;
            table[i] = c;
        }
        return table;
    }
}
