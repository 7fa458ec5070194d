// `quill prepare`: text files in, token shards + manifest + tokenizer out. Plain-text files are read in chunks of
// whole lines and split by position (the first 1 - val_fraction of each file's bytes train, the rest validate),
// like nanoGPT's character Shakespeare; JSONL files (one {"text": ...} per line, as `quill data clean` writes)
// are split per document by a hash of its text, so the split is stable when documents are added. Documents are
// separated by the tokenizer's end-of-text token when it has one.
// Not handled: HTML or raw web dumps (clean them first with `quill data clean`).
using System.Text;
using Quill.Data.Cleaning;
using Quill.Tokenization;

namespace Quill.Data;

/// <summary>What to prepare.</summary>
public sealed record PrepareOptions(IReadOnlyList<string> Inputs, string Tokenizer, string OutDir, double ValFraction = 0.1);

/// <summary>Progress of prepare: bytes read of the total.</summary>
public sealed record PrepareProgress(long BytesDone, long BytesTotal, long TokensWritten);

/// <summary>The result of prepare.</summary>
public sealed record PrepareResult(TokenManifest Manifest, long TrainTokens, long ValTokens, string OutDir);

/// <summary>Tokenizes text files into shards.</summary>
public static class DatasetPreparer
{
    private const int ChunkBytes = 1 << 20;

    public static PrepareResult Prepare(PrepareOptions options, IProgress<PrepareProgress>? progress = null, CancellationToken cancel = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.Inputs.Count == 0) throw new InvalidConfigException("--input: give at least one text file.");
        if (!(options.ValFraction >= 0 && options.ValFraction < 1)) throw new InvalidConfigException($"--val-fraction must be in [0, 1) (got {options.ValFraction}).");
        foreach (string f in options.Inputs)
        {
            if (Directory.Exists(f)) throw new InvalidFileException($"{f} is a folder; pass the text files inside it (or clean the folder first with `quill data clean`).");
            if (!File.Exists(f)) throw new InvalidFileException($"input file {f} not found; check the path.");
        }
        var tokenizer = ResolveTokenizer(options);
        Directory.CreateDirectory(options.OutDir);
        bool wide = tokenizer.VocabSize > 65536;
        var manifest = new TokenManifest
        {
            Dtype = wide ? "uint32" : "uint16",
            VocabSize = tokenizer.VocabSize,
            TokenizerFamily = tokenizer.Family,
            Sources = [.. options.Inputs.Select(Path.GetFullPath)],
        };
        tokenizer.Save(Path.Combine(options.OutDir, manifest.Tokenizer));
        long total = options.Inputs.Sum(f => new FileInfo(f).Length), done = 0;
        using var train = new TokenShardWriter(options.OutDir, "train", wide, manifest.Train);
        using var val = new TokenShardWriter(options.OutDir, "val", wide, manifest.Val);
        int eos = tokenizer.EosId;
        foreach (string file in options.Inputs)
        {
            bool jsonl = file.EndsWith(".jsonl", StringComparison.OrdinalIgnoreCase);
            long size = new FileInfo(file).Length, trainBytes = (long)(size * (1 - options.ValFraction));
            var pieces = jsonl
                ? ReadJsonl(file).Select(d => (d.Text, Validation: DocumentSplit.IsValidation(d.Key, options.ValFraction), d.Length))
                : ReadChunks(file, trainBytes).Select(c => (c.Text, Validation: c.Offset >= trainBytes, c.Length));
            foreach (var (text, toVal, length) in pieces)
            {
                cancel.ThrowIfCancellationRequested();
                var w = toVal ? val : train;
                w.Write(tokenizer.Encode(text));
                if (jsonl && eos >= 0) w.Write([eos]);
                done += length;
                progress?.Report(new PrepareProgress(done, total, train.TotalTokens + val.TotalTokens));
            }
            if (!jsonl && eos >= 0) train.Write([eos]);
        }
        train.Complete();
        val.Complete();
        if (train.TotalTokens == 0) throw new InvalidFileException($"the inputs ({string.Join(", ", options.Inputs)}) hold no text to train on.");
        manifest.Save(options.OutDir);
        return new PrepareResult(manifest, train.TotalTokens, val.TotalTokens, options.OutDir);
    }

    /// <summary>
    /// The tokenizer named by --tokenizer: "char" (trained on the inputs), "byte", a tokenizer file, a GGUF model
    /// (its vocabulary), or a folder holding one (a HF model folder, a Quill run), so data can be prepared with the
    /// tokenizer of the model it will train.
    /// </summary>
    public static ITokenizer ResolveTokenizer(PrepareOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        return options.Tokenizer switch
        {
            "char" => CharTokenizer.Train(options.Inputs.SelectMany(f => f.EndsWith(".jsonl", StringComparison.OrdinalIgnoreCase)
                ? ReadJsonl(f).Select(d => d.Text) : ReadChunks(f, -1).Select(c => c.Text))),
            "byte" => new ByteTokenizer(),
            _ when File.Exists(options.Tokenizer) => TokenizerLoader.Load(options.Tokenizer),
            _ when Directory.Exists(Path.Combine(options.Tokenizer, "checkpoint")) => TokenizerLoader.Load(Path.Combine(options.Tokenizer, "checkpoint")),
            _ when Directory.Exists(options.Tokenizer) => TokenizerLoader.Load(options.Tokenizer),
            _ => throw new InvalidFileException($"--tokenizer {options.Tokenizer}: not 'char', 'byte', an existing tokenizer file or a model folder holding one."),
        };
    }

    /// <summary>
    /// Reads a UTF-8 text file in chunks that end at a line break, or exactly at the first character boundary at or
    /// after splitAt (so no chunk straddles the train / validation boundary); invalid UTF-8 is an error naming the file.
    /// </summary>
    private static IEnumerable<(string Text, long Offset, long Length)> ReadChunks(string file, long splitAt)
    {
        var utf8 = new UTF8Encoding(false, throwOnInvalidBytes: true);
        using var fs = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        byte[] buf = new byte[ChunkBytes];
        int filled = 0;
        long offset = 0;
        bool eof = false;
        while (true)
        {
            while (!eof && filled < buf.Length)
            {
                int n = fs.Read(buf, filled, buf.Length - filled);
                if (n == 0) eof = true;
                else filled += n;
            }
            if (filled == 0) yield break;
            int cut = filled;
            if (!eof)
            {
                int nl = Array.LastIndexOf(buf, (byte)'\n', filled - 1);
                if (nl < 0)
                {
                    Array.Resize(ref buf, buf.Length * 2); // a line longer than the buffer: read more of it
                    continue;
                }
                cut = nl + 1;
            }
            if (offset < splitAt && offset + cut > splitAt)
            {
                cut = (int)(splitAt - offset);
                while (cut < filled && (buf[cut] & 0xC0) == 0x80) cut++; // not inside a UTF-8 sequence
            }
            string text;
            try
            {
                text = utf8.GetString(buf, 0, cut);
            }
            catch (DecoderFallbackException e)
            {
                throw new InvalidFileException($"{file} is not valid UTF-8 near byte {offset + Math.Max(0, e.Index)}; convert it to UTF-8 (or run `quill data clean`).", e);
            }
            yield return (text, offset, cut);
            offset += cut;
            filled -= cut;
            Array.Copy(buf, cut, buf, 0, filled);
        }
    }

    /// <summary>The documents of a JSONL file (as `quill data clean` writes): text, split key (id, else text), size.</summary>
    private static IEnumerable<(string Text, string Key, long Length)> ReadJsonl(string file) =>
        CleanJsonl.ReadDocuments(file).Select(d => (d.Text, d.Id.Length > 0 ? d.Id : d.Text, (long)Encoding.UTF8.GetByteCount(d.Text) + 1));
}
