// --no-mmap: weights read into memory, so the file can be overwritten in place (truncated, as `cp` does) while the
// model runs; the mapped default would fault on the truncated pages.
using Quill.Inference;
using Quill.Models;
using Quill.Tokenization;
using Quill.Training;

namespace Quill.Tests.Inference;

public sealed class NoMmapTests : IDisposable
{
    private readonly string dir = Directory.CreateTempSubdirectory("quill-nommap-").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    [Fact]
    public void Model_read_into_memory_survives_its_file_being_truncated_in_place()
    {
        var chars = new CharTokenizer("abcdefgh ".Select(c => (int)c));
        string folder = Path.Combine(dir, "m");
        Checkpoint.SaveModel(folder, LanguageModel.Create(new ModelConfig { Arch = "llama", VocabSize = chars.VocabSize, NLayer = 2, NHead = 2, NEmbd = 32, BlockSize = 16 }, 3), chars);
        int[] tokens = [1, 2, 3, 4];

        float[] Logits(InferenceModel m)
        {
            var e = new InferenceEngine(m, 16);
            var logits = new float[m.Spec.VocabSize * tokens.Length];
            e.Forward(e.CreateCache(), tokens, logits, allLogits: true);
            return logits;
        }

        float[] mapped;
        using (var m = ModelLoader.Load(folder, null, null, mmap: true)) mapped = Logits(m);
        using var inMemory = ModelLoader.Load(folder, null, null, mmap: false);
        Assert.Equal(mapped, Logits(inMemory));
        string weights = Path.Combine(folder, "model.safetensors");
        using (var f = new FileStream(weights, FileMode.Open, FileAccess.Write)) f.SetLength(0); // cp's first step
        Assert.Equal(mapped, Logits(inMemory));
    }
}
