// Reads a prepared dataset (manifest + shards) memory-mapped, and cuts (input, target) windows of T+1 tokens.
// Windows are chosen by a generator seeded from (seed, step, micro-batch), so the data a step sees depends only
// on its number: resuming a run at step k feeds exactly the batches the uninterrupted run fed.
// Not handled: windows that span two shards (each window lies inside one shard), document-aware masking.
using System.IO.MemoryMappedFiles;
using Quill.Tensors;

namespace Quill.Data;

/// <summary>One split of a prepared dataset, memory-mapped.</summary>
public sealed unsafe class TokenDataset : IDisposable
{
    private readonly List<Shard> shards = [];
    private readonly int bytesPerToken;
    private readonly long[] cumulative;

    /// <summary>Opens the "train" or "val" split of the dataset in dir.</summary>
    public TokenDataset(string dir, string split)
    {
        Manifest = TokenManifest.Load(dir);
        bytesPerToken = Manifest.BytesPerToken;
        var list = split == "train" ? Manifest.Train : split == "val" ? Manifest.Val : throw new ArgumentException("split is train or val");
        var cum = new List<long>();
        long total = 0;
        try
        {
            foreach (var s in list)
            {
                string path = Path.Combine(dir, s.File);
                if (!File.Exists(path)) throw new InvalidFileException($"{path} is listed in the manifest but missing; re-run `quill prepare`.");
                long len = new FileInfo(path).Length;
                if (len != s.Tokens * bytesPerToken)
                    throw new InvalidFileException($"{path} holds {len} bytes but the manifest says {s.Tokens} tokens of {bytesPerToken} bytes; the file is truncated or corrupt, re-run `quill prepare`.");
                if (s.Tokens == 0) continue;
                var mmf = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
                var view = mmf.CreateViewAccessor(0, len, MemoryMappedFileAccess.Read);
                byte* ptr = null;
                view.SafeMemoryMappedViewHandle.AcquirePointer(ref ptr);
                shards.Add(new Shard(mmf, view, (IntPtr)(ptr + view.PointerOffset), s.Tokens, path));
                total += s.Tokens;
                cum.Add(total);
            }
        }
        catch
        {
            Dispose();
            throw;
        }
        cumulative = [.. cum];
        Tokens = total;
    }

    public TokenManifest Manifest { get; }

    /// <summary>Tokens in this split.</summary>
    public long Tokens { get; }

    /// <summary>
    /// Fills inputs and targets [B * T] with B windows of T+1 tokens drawn by rng (targets are inputs shifted by one).
    /// Throws InvalidFileException when a token id is outside the vocabulary.
    /// </summary>
    public void SampleBatch(Rng rng, int b, int t, int[] inputs, int[] targets, int vocabSize)
    {
        ArgumentNullException.ThrowIfNull(rng);
        ArgumentNullException.ThrowIfNull(inputs);
        ArgumentNullException.ThrowIfNull(targets);
        for (int i = 0; i < b; i++)
        {
            // Pick a shard by token count, then a start inside it.
            long pick = rng.NextInt64(Tokens);
            int s = 0;
            while (cumulative[s] <= pick) s++;
            var shard = shards[s];
            if (shard.Tokens < t + 1)
                throw new QuillException($"{shard.Path} holds {shard.Tokens} tokens, fewer than one window of {t + 1}; use a shorter context (--block-size) or more data.");
            long start = rng.NextInt64(shard.Tokens - t);
            for (int j = 0; j <= t; j++)
            {
                int id = Read((byte*)shard.Ptr, start + j);
                if ((uint)id >= (uint)vocabSize)
                    throw new InvalidFileException($"{shard.Path}: token id {id} at position {start + j} is outside the model's vocabulary of {vocabSize}; prepare the data with the model's tokenizer or raise vocab_size.");
                if (j < t) inputs[i * t + j] = id;
                if (j > 0) targets[i * t + j - 1] = id;
            }
        }
    }

    /// <summary>Can this split supply windows of T+1 tokens?</summary>
    public bool CanSample(int t) => shards.Any(s => s.Tokens >= t + 1);

    private int Read(byte* p, long index) => bytesPerToken == 2 ? ((ushort*)p)[index] : (int)((uint*)p)[index];

    private sealed record Shard(MemoryMappedFile File, MemoryMappedViewAccessor View, IntPtr Ptr, long Tokens, string Path);

    public void Dispose()
    {
        foreach (var s in shards)
        {
            s.View.SafeMemoryMappedViewHandle.ReleasePointer();
            s.View.Dispose();
            s.File.Dispose();
        }
        shards.Clear();
    }
}
