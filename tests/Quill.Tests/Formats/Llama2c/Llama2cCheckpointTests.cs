// Reads stories260K.bin (header values from the data README) and small synthetic checkpoints in both layouts.
using Quill.Formats.Llama2c;
using Quill.Tests.Support;

namespace Quill.Tests.Formats.Llama2c;

public sealed class Llama2cCheckpointTests : IDisposable
{
    private const string Stories = "llama2c/stories260K.bin";
    private readonly string dir = Directory.CreateTempSubdirectory("quill-l2c-").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    [TestDataFact(Stories)]
    public void Stories260K_header_and_layout()
    {
        string path = TestData.PathOf(Stories);
        using var m = Llama2cCheckpoint.Open(path);
        Assert.Equal(0, m.Version);
        Assert.Equal(new Llama2cConfig(64, 172, 5, 8, 4, 512, 512, true), m.Config);
        Assert.Equal(8, m.Config.HeadSize);
        Assert.Equal(32, m.Config.KvDim);
        Assert.Equal(512 * 64, m.TokenEmbedding.Length);
        Assert.Equal(32 * 64, m.Wk(4).Length);
        Assert.Equal(64 * 172, m.W2(0).Length);
        Assert.True(m.Classifier == m.TokenEmbedding);

        // independent read: rms_final sits right after w3, and right after it the legacy freq_cis_real table
        // starts with cos(0) = 1 for position 0
        long floatsBefore = 512L * 64 + 5 * 64 + 5 * 64 * 64 + 2 * 5 * 32 * 64 + 5 * 64 * 64 + 5 * 64 + 3 * 5 * 172 * 64;
        using var fs = File.OpenRead(path);
        using var br = new BinaryReader(fs);
        fs.Position = 28 + floatsBefore * 4;
        for (int i = 0; i < 64; i++) Assert.Equal(br.ReadSingle(), m.RmsFinal[i]);
        for (int i = 0; i < 4; i++) Assert.Equal(1f, br.ReadSingle());
        long wq2 = 512L * 64 + 5 * 64 + 2 * 64 * 64; // wq of layer 2, in floats
        for (int i = 0; i < 64 * 64; i += 97)
        {
            fs.Position = 28 + (wq2 + i) * 4;
            Assert.Equal(br.ReadSingle(), m.Wq(2)[i]);
        }
    }

    private static float[] Fill(int n, float start)
    {
        var a = new float[n];
        for (int i = 0; i < n; i++) a[i] = start + i * 0.001f;
        return a;
    }

    [Theory]
    [InlineData(0, true)]
    [InlineData(0, false)]
    [InlineData(1, true)]
    [InlineData(1, false)]
    public void Synthetic_checkpoints_in_both_layouts(int version, bool shared)
    {
        const int C = 8, H = 12, L = 2, NH = 4, NKV = 2, V = 10, S = 6, KV = 4;
        var w = new Dictionary<string, float[]>
        {
            ["token_embedding"] = Fill(V * C, 1), ["rms_att"] = Fill(L * C, 2), ["wq"] = Fill(L * C * C, 3),
            ["wk"] = Fill(L * KV * C, 4), ["wv"] = Fill(L * KV * C, 5), ["wo"] = Fill(L * C * C, 6),
            ["rms_ffn"] = Fill(L * C, 7), ["w1"] = Fill(L * H * C, 8), ["w2"] = Fill(L * C * H, 9),
            ["w3"] = Fill(L * H * C, 10), ["rms_final"] = Fill(C, 11), ["classifier"] = Fill(V * C, 12),
        };
        string path = Path.Combine(dir, $"m{version}{shared}.bin");
        using (var bw = new BinaryWriter(File.Create(path)))
        {
            int[] header = [C, H, L, NH, NKV, version == 0 && !shared ? -V : V, S];
            string[] order;
            if (version == 0)
            {
                foreach (int x in header) bw.Write(x);
                order = ["token_embedding", "rms_att", "wq", "wk", "wv", "wo", "rms_ffn", "w1", "w2", "w3", "rms_final", "freq", "classifier"];
            }
            else
            {
                bw.Write(0x616b3432u);
                bw.Write(1);
                foreach (int x in header) bw.Write(x);
                bw.Write((byte)(shared ? 1 : 0));
                bw.Write(new byte[256 - 37]);
                order = ["rms_att", "rms_ffn", "rms_final", "token_embedding", "wq", "wk", "wv", "wo", "w1", "w2", "w3", "classifier"];
            }
            foreach (string name in order)
            {
                if (name == "classifier" && shared) continue;
                float[] data = name == "freq" ? new float[2 * S * (C / NH / 2)] : w[name];
                foreach (float f in data) bw.Write(f);
            }
        }
        using var m = Llama2cCheckpoint.Open(path);
        Assert.Equal(version, m.Version);
        Assert.Equal(new Llama2cConfig(C, H, L, NH, NKV, V, S, shared), m.Config);
        foreach (var (name, data) in w)
        {
            float[] want = name == "classifier" && shared ? w["token_embedding"] : data;
            Assert.Equal(want, m.GetWeight(name).ToArray());
        }
        Assert.Equal(w["w2"].AsSpan(C * H, C * H).ToArray(), m.W2(1).ToArray());
        Assert.Equal(w["wk"].AsSpan(0, KV * C).ToArray(), m.Wk(0).ToArray());
        Assert.Throws<ArgumentOutOfRangeException>(() => m.Wq(2).Length);

        // one float short is a truncated file
        byte[] bytes = File.ReadAllBytes(path);
        string cut = Path.Combine(dir, "cut.bin");
        File.WriteAllBytes(cut, bytes[..^4]);
        var e = Assert.Throws<InvalidFileException>(() => Llama2cCheckpoint.Open(cut).Dispose());
        Assert.Contains(cut, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Bad_headers_are_rejected()
    {
        string path = Path.Combine(dir, "bad.bin");
        File.WriteAllBytes(path, new byte[10]);
        Assert.Throws<InvalidFileException>(() => Llama2cCheckpoint.Open(path).Dispose());
        using (var bw = new BinaryWriter(File.Create(path)))
        {
            foreach (int x in new[] { 10, 4, 1, 3, 1, 5, 4 }) bw.Write(x); // dim 10 not a multiple of 3 heads
        }
        var e = Assert.Throws<InvalidFileException>(() => Llama2cCheckpoint.Open(path).Dispose());
        Assert.Contains("n_heads", e.Message, StringComparison.Ordinal);
        using (var bw = new BinaryWriter(File.Create(path)))
        {
            bw.Write(0x616b3432u);
            bw.Write(2);
            bw.Write(new byte[300]);
        }
        e = Assert.Throws<InvalidFileException>(() => Llama2cCheckpoint.Open(path).Dispose());
        Assert.Contains("version 2", e.Message, StringComparison.Ordinal);
    }
}
