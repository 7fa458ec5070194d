// `quill data clean` as a library call: reads the inputs, cleans and filters each document in parallel,
// deduplicates (exact, then MinHash + LSH) in input order, and writes DIR/clean.jsonl and DIR/report.json. The
// exact index holds every document that reached dedup, kept or removed as a near duplicate, so an exact copy of a
// removed document is reported as exact; the near index holds kept documents only.
//
// Threads: one reader thread turns files into batches of raw documents; W workers decode, clean, filter, hash
// and serialize whole batches; the calling thread commits batches strictly in order (dedup + write), so the
// output is the same whatever W is. Memory stays bounded: at most 2 * W + 2 batches (about 0.5 MB of input each)
// are in flight, and the dedup state grows by ~0.7 KB per kept document (16 bytes per near duplicate), never with
// document size.
// Resume: after finishing input files, a checkpoint (DIR/state.json, written to a temporary name and renamed)
// records how many files are done, how long clean.jsonl.partial is, and the running report. A later run with the
// same config and inputs truncates the partial file to that length, rebuilds the dedup index from it, and goes
// on with the next file. The finished output is renamed to clean.jsonl.
// Does not handle: resuming inside a file (a file is redone from its start), or inputs that changed meanwhile; after
// a resume the exact index is rebuilt from the kept output alone, so an exact copy of a document removed as a near
// duplicate before the stop is reported as near (the output is the same either way).
using System.Buffers;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text;
using System.Text.Json;
using Quill.Data.Dedup;
using Quill.Kernels;

namespace Quill.Data.Cleaning;

/// <summary>Runs a cleaning job over files and folders.</summary>
public sealed class CleanPipeline
{
    private const int BatchDocs = 2048;
    private const string StateFile = "state.json";
    private const string PartialFile = "clean.jsonl.partial";

    private readonly CleanConfig config;

    public CleanPipeline(CleanConfig? config = null)
    {
        this.config = config ?? new CleanConfig();
        this.config.Validate();
    }

    /// <summary>Start over even when DIR holds a checkpoint or a finished run.</summary>
    public bool Restart { get; init; }

    /// <summary>Least time between checkpoints (a checkpoint is only taken when an input file finishes).</summary>
    public TimeSpan CheckpointInterval { get; init; } = TimeSpan.FromSeconds(0.5);

    /// <summary>Raw input bytes per batch handed to a worker (tests make it small to get many batches).</summary>
    internal int BatchBytes { get; init; } = 512 << 10;

    /// <summary>Cleans <paramref name="inputs"/> (files or folders) into <paramref name="outDir"/>.</summary>
    public CleanReport Run(IReadOnlyList<string> inputs, string outDir, IProgress<CleanProgress>? progress = null, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(inputs);
        ArgumentNullException.ThrowIfNull(outDir);
        if (inputs.Count == 0) throw new InvalidConfigException("no inputs: pass at least one --input file or folder.");
        List<InputFile> files = InputReader.Expand(inputs, outDir);
        Directory.CreateDirectory(outDir);
        string statePath = Path.Combine(outDir, StateFile);
        string partialPath = Path.Combine(outDir, PartialFile);
        string finalPath = Path.Combine(outDir, "clean.jsonl");
        string reportPath = Path.Combine(outDir, "report.json");
        string fingerprint = config.Fingerprint();
        List<string> inputKeys = files.Select(f => $"{f.Path}|{f.Length}").ToList();

        if (Restart)
        {
            foreach (string p in new[] { statePath, partialPath, finalPath, reportPath }) File.Delete(p);
        }
        RunState? state = RunState.Load(statePath);
        if (state != null && (state.Config != fingerprint || !state.Inputs.SequenceEqual(inputKeys)))
        {
            throw new InvalidConfigException($"{outDir} holds a run with a different config or different inputs; pass --restart to start over, or choose another --out.");
        }
        if (state == null && (File.Exists(finalPath) || File.Exists(partialPath)))
        {
            throw new InvalidConfigException($"{outDir} already holds clean.jsonl output without a checkpoint; pass --restart to overwrite it, or choose another --out.");
        }
        if (state is { Complete: true } && File.Exists(finalPath)) return state.Report;

        state ??= new RunState { Config = fingerprint, Inputs = inputKeys, Report = new CleanReport { InputFiles = files.Count } };
        var exact = new HashSet<UInt128>();
        var hasher = new MinHasher(config.Dedup.NumPermutations, config.Dedup.ShingleSize, config.Dedup.Seed);
        var lsh = new LshIndex(config.Dedup.NumPermutations, config.Dedup.Bands);
        if (state.OutputBytes > 0 && !File.Exists(partialPath) && File.Exists(finalPath))
        {
            File.Move(finalPath, partialPath); // stopped between the final rename and the last checkpoint
        }
        if (state.OutputBytes > 0 && (!File.Exists(partialPath) || new FileInfo(partialPath).Length < state.OutputBytes))
        {
            throw new InvalidFileException($"{partialPath} is shorter than its checkpoint says ({state.OutputBytes} bytes); pass --restart to start over.");
        }
        using (var output = new FileStream(partialPath, FileMode.OpenOrCreate, FileAccess.ReadWrite))
        {
            output.SetLength(state.OutputBytes);
        }
        if (state.OutputBytes > 0) RebuildIndex(partialPath, state.OutputBytes, hasher, exact, lsh, ct);

        var stopwatch = Stopwatch.StartNew();
        double previousSeconds = state.Report.Seconds;
        using (var output = new FileStream(partialPath, FileMode.Append, FileAccess.Write, FileShare.Read, 1 << 20))
        {
            var run = new RunContext(this, files, state, output, exact, hasher, lsh, statePath, progress, stopwatch, previousSeconds);
            run.Execute(ct);
        }

        state.Report.Seconds = previousSeconds + stopwatch.Elapsed.TotalSeconds;
        File.Move(partialPath, finalPath, overwrite: true);
        WriteAtomic(reportPath, state.Report.ToJson());
        state.Complete = true;
        state.OutputBytes = new FileInfo(finalPath).Length;
        state.Save(statePath);
        return state.Report;
    }

    private void RebuildIndex(string partialPath, long length, MinHasher hasher, HashSet<UInt128> exact, LshIndex lsh, CancellationToken ct)
    {
        var shingles = new List<ulong>();
        var words = new List<ulong>();
        var sig = new uint[hasher.NumPermutations];
        long n = 0;
        foreach (CleanDocument doc in CleanJsonl.ReadDocuments(partialPath, length))
        {
            if ((++n & 1023) == 0) ct.ThrowIfCancellationRequested();
            if (config.Dedup.Exact) exact.Add(ContentHash.Of(doc.Text));
            if (config.Dedup.Near)
            {
                shingles.Clear();
                hasher.Shingles(doc.Text, shingles, words);
                hasher.ComputeSignature(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(shingles), sig);
                lsh.Add(sig);
            }
        }
    }

    internal static void WriteAtomic(string path, string text)
    {
        string tmp = path + ".tmp";
        File.WriteAllText(tmp, text, new UTF8Encoding(false));
        File.Move(tmp, path, overwrite: true);
    }

    private static readonly object Processed = new();

    private sealed class Batch
    {
        public long Seq;
        public readonly List<object> Items = []; // RawDocument or SkipRecord, in input order
        public readonly List<int> CompletedFiles = [];
        public long Bytes;
        public long InputPosition; // on-disk bytes of this run's inputs consumed when the batch closed
        public DocResult?[] Results = [];
    }

    private sealed class DocResult
    {
        public string Source = "";
        public string Id = "";
        public string? RemovedBy;
        public SkipRecord? Skip;
        public byte[]? Line;
        public UInt128 Hash;
        public uint[]? Signature;
        public long BytesIn, BytesOut;
        public string Snippet = "";
        public int MojibakeRepairs, Emails, Phones;
        public bool HtmlStripped, Legacy;
    }

    // One execution: reader thread, worker threads, in-order commit on the calling thread.
    private sealed class RunContext(CleanPipeline owner, List<InputFile> files, RunState state, FileStream output,
        HashSet<UInt128> exact, MinHasher hasher, LshIndex lsh, string statePath, IProgress<CleanProgress>? progress,
        Stopwatch stopwatch, double previousSeconds)
    {
        private readonly CleanConfig cfg = owner.config;
        private readonly object gate = new();
        private readonly Dictionary<long, Batch> done = [];
        private long producedBatches = -1;
        private Exception? failure;
        private long docsThisRun;
        private TimeSpan lastCheckpoint = TimeSpan.Zero;
        private TimeSpan lastProgress = TimeSpan.Zero;
        private readonly long totalBytes = files.Skip(state.FilesDone).Sum(f => f.Length);

        public void Execute(CancellationToken ct)
        {
            int workers = cfg.Threads > 0 ? cfg.Threads : KernelThreads.Count;
            using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
            using var queue = new BlockingCollection<Batch>(workers * 2);
            using var slots = new SemaphoreSlim(workers * 2 + 2);
            var threads = new List<Thread> { new(() => Produce(queue, slots, cts.Token)) { IsBackground = true, Name = "clean-reader" } };
            for (int w = 0; w < workers; w++) threads.Add(new Thread(() => Work(queue, cts)) { IsBackground = true, Name = "clean-worker" });
            foreach (var t in threads) t.Start();
            try
            {
                Consume(slots, cts.Token);
            }
            finally
            {
                cts.Cancel();
                foreach (var t in threads) t.Join();
            }
            ct.ThrowIfCancellationRequested();
        }

        private void Produce(BlockingCollection<Batch> queue, SemaphoreSlim slots, CancellationToken ct)
        {
            long seq = 0;
            try
            {
                var reader = new InputReader(cfg.Input);
                var batch = new Batch();
                long finished = 0;
                void Send()
                {
                    slots.Wait(ct);
                    batch.Seq = seq++;
                    queue.Add(batch, ct);
                    batch = new Batch();
                }
                for (int f = state.FilesDone; f < files.Count; f++)
                {
                    ct.ThrowIfCancellationRequested();
                    long pos = 0;
                    reader.Read(files[f], doc =>
                    {
                        batch.Items.Add(doc);
                        batch.Bytes += doc.Bytes.Length;
                        if (batch.Bytes >= owner.BatchBytes || batch.Items.Count >= BatchDocs)
                        {
                            batch.InputPosition = finished + pos;
                            Send();
                        }
                    }, skip => batch.Items.Add(skip), p => pos = p, ct);
                    finished += files[f].Length;
                    batch.CompletedFiles.Add(f);
                    batch.InputPosition = finished;
                    if (batch.Bytes >= owner.BatchBytes / 4 || batch.Items.Count >= BatchDocs / 4) Send();
                }
                if (batch.Items.Count > 0 || batch.CompletedFiles.Count > 0) Send();
            }
            catch (OperationCanceledException)
            {
            }
            catch (Exception ex)
            {
                Fail(ex);
            }
            finally
            {
                queue.CompleteAdding();
                lock (gate)
                {
                    producedBatches = seq;
                    Monitor.PulseAll(gate);
                }
            }
        }

        private void Work(BlockingCollection<Batch> queue, CancellationTokenSource cts)
        {
            try
            {
                var cleaner = new DocumentCleaner(cfg);
                var shingles = new List<ulong>();
                var words = new List<ulong>();
                var buffer = new ArrayBufferWriter<byte>(1 << 16);
                foreach (Batch batch in queue.GetConsumingEnumerable(cts.Token))
                {
                    batch.Results = new DocResult?[batch.Items.Count];
                    for (int i = 0; i < batch.Items.Count; i++)
                    {
                        if (batch.Items[i] is RawDocument raw)
                        {
                            batch.Results[i] = Process(raw, cleaner, shingles, words, buffer);
                            batch.Items[i] = Processed; // the raw bytes are not needed any more
                        }
                    }
                    lock (gate)
                    {
                        done[batch.Seq] = batch;
                        Monitor.PulseAll(gate);
                    }
                }
            }
            catch (OperationCanceledException)
            {
            }
            catch (Exception ex)
            {
                Fail(ex);
                cts.Cancel();
            }
        }

        private void Fail(Exception ex)
        {
            lock (gate)
            {
                failure ??= ex;
                Monitor.PulseAll(gate);
            }
        }

        private DocResult Process(RawDocument raw, DocumentCleaner cleaner, List<ulong> shingles, List<ulong> words, ArrayBufferWriter<byte> buffer)
        {
            var r = new DocResult { Source = raw.Source };
            string text;
            string? id = null;
            if (raw.Kind == RawKind.JsonLine)
            {
                r.Skip = JsonlFields.Extract(raw, cfg.Input, out text, out id);
                if (r.Skip != null) return r;
                r.BytesIn = Encoding.UTF8.GetByteCount(text);
            }
            else
            {
                text = TextDecoding.Decode(raw.Bytes, out r.Legacy);
                r.BytesIn = raw.Bytes.Length;
            }
            CleanedDocument cleaned = cleaner.Clean(text, raw.Kind == RawKind.Html);
            r.MojibakeRepairs = cleaned.MojibakeRepairs;
            r.Emails = cleaned.Emails;
            r.Phones = cleaned.Phones;
            r.HtmlStripped = cleaned.HtmlStripped;
            r.RemovedBy = cleaned.RemovedBy;
            if (!cleaned.Kept)
            {
                r.Id = id ?? ContentHash.ShortId(ContentHash.Of(cleaned.Text));
                r.Snippet = Snip(cleaned.Text.Length > 0 ? cleaned.Text : text);
                return r;
            }
            r.Hash = ContentHash.Of(cleaned.Text);
            r.Id = id ?? ContentHash.ShortId(r.Hash);
            r.Snippet = Snip(cleaned.Text);
            if (cfg.Dedup.Near)
            {
                shingles.Clear();
                hasher.Shingles(cleaned.Text, shingles, words);
                r.Signature = new uint[hasher.NumPermutations];
                hasher.ComputeSignature(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(shingles), r.Signature);
            }
            buffer.ResetWrittenCount();
            CleanJsonl.WriteLine(buffer, r.Id, r.Source, cleaned.Text);
            r.Line = buffer.WrittenSpan.ToArray();
            r.BytesOut = Encoding.UTF8.GetByteCount(cleaned.Text);
            return r;
        }

        private string Snip(string text) => text.Length <= cfg.Report.ExampleChars ? text : text[..cfg.Report.ExampleChars];

        private void Consume(SemaphoreSlim slots, CancellationToken ct)
        {
            for (long next = 0; ; next++)
            {
                Batch? batch;
                lock (gate)
                {
                    while (!done.TryGetValue(next, out batch))
                    {
                        if (failure != null) throw new AggregateException("cleaning failed", failure);
                        if (producedBatches == next) return;
                        ct.ThrowIfCancellationRequested();
                        Monitor.Wait(gate, 100);
                    }
                    done.Remove(next);
                }
                ct.ThrowIfCancellationRequested();
                Commit(batch);
                slots.Release();
            }
        }

        private void Commit(Batch batch)
        {
            CleanReport report = state.Report;
            int examples = cfg.Report.ExamplesPerFilter;
            for (int i = 0; i < batch.Items.Count; i++)
            {
                if (batch.Items[i] is SkipRecord skip)
                {
                    report.AddSkip(skip);
                    continue;
                }
                DocResult r = batch.Results[i]!;
                if (r.Skip != null)
                {
                    report.AddSkip(r.Skip);
                    continue;
                }
                docsThisRun++;
                report.DocumentsIn++;
                report.BytesIn += r.BytesIn;
                CountChanges(report, r);
                if (r.RemovedBy != null)
                {
                    report.AddRemoved(r.RemovedBy, new RemovedExample { Id = r.Id, Source = r.Source, Snippet = r.Snippet }, examples);
                    continue;
                }
                if (cfg.Dedup.Exact && exact.Contains(r.Hash))
                {
                    report.AddRemoved("exact_duplicate", new RemovedExample { Id = r.Id, Source = r.Source, Snippet = r.Snippet, Similarity = 1 }, examples);
                    continue;
                }
                if (cfg.Dedup.Near)
                {
                    if (lsh.FindSimilar(r.Signature!, cfg.Dedup.Threshold, out double similarity) >= 0)
                    {
                        // a later exact copy of this document is an exact duplicate, though this one is not kept
                        if (cfg.Dedup.Exact) exact.Add(r.Hash);
                        report.AddRemoved("near_duplicate", new RemovedExample { Id = r.Id, Source = r.Source, Snippet = r.Snippet, Similarity = Math.Round(similarity, 4) }, examples);
                        continue;
                    }
                    lsh.Add(r.Signature!);
                }
                if (cfg.Dedup.Exact) exact.Add(r.Hash);
                output.Write(r.Line);
                report.DocumentsOut++;
                report.BytesOut += r.BytesOut;
            }

            if (batch.CompletedFiles.Count > 0)
            {
                state.FilesDone = batch.CompletedFiles[^1] + 1;
                bool last = state.FilesDone == files.Count;
                if (!last && stopwatch.Elapsed - lastCheckpoint >= owner.CheckpointInterval)
                {
                    output.Flush();
                    state.OutputBytes = output.Length;
                    state.Report.Seconds = previousSeconds + stopwatch.Elapsed.TotalSeconds;
                    state.Save(statePath);
                    lastCheckpoint = stopwatch.Elapsed;
                }
            }
            if (progress != null && ((stopwatch.Elapsed - lastProgress).TotalMilliseconds >= 100 || state.FilesDone == files.Count))
            {
                lastProgress = stopwatch.Elapsed;
                progress.Report(new CleanProgress(docsThisRun, batch.InputPosition, totalBytes, stopwatch.Elapsed, state.FilesDone, files.Count));
            }
        }

        private static void CountChanges(CleanReport report, DocResult r)
        {
            CleaningChanges c = report.Changes;
            if (r.Legacy) c.DecodedAsWindows1252++;
            c.MojibakeRepairs += r.MojibakeRepairs;
            if (r.HtmlStripped) c.HtmlStripped++;
            c.EmailsRemoved += r.Emails;
            c.PhonesRemoved += r.Phones;
        }
    }

    // The checkpoint of a run (DIR/state.json).
    private sealed class RunState
    {
        public int Version { get; set; } = 1;
        public string Config { get; set; } = "";
        public List<string> Inputs { get; set; } = [];
        public int FilesDone { get; set; }
        public long OutputBytes { get; set; }
        public bool Complete { get; set; }
        public CleanReport Report { get; set; } = new();

        public static RunState? Load(string path)
        {
            if (!File.Exists(path)) return null;
            try
            {
                var s = JsonSerializer.Deserialize<RunState>(File.ReadAllText(path), CleanReport.JsonOptions);
                return s is { Version: 1 } ? s : throw new InvalidFileException($"{path} is from another Quill version; pass --restart.");
            }
            catch (JsonException ex)
            {
                throw new InvalidFileException($"{path} is damaged ({ex.Message}); pass --restart to start over.", ex);
            }
        }

        public void Save(string path) => WriteAtomic(path, JsonSerializer.Serialize(this, CleanReport.JsonOptions));
    }
}
