// Continuous batching for one model. Requests wait in a bounded queue; one dedicated thread runs the model: at
// each step it admits waiting jobs while fewer than MaxBatch sequences are active (prefilling each and sampling
// its first token), then advances every active sequence by one token in a single batched decode call, samples
// each row with that sequence's own sampler, and streams the text out. A finished, stopped or cancelled sequence
// leaves before the next step and its slot goes to the next waiting job. When the queue is full, Submit throws
// QueueFullException (the server answers 429). A sequence whose own logits cannot be sampled (NaN / Inf:
// NonFiniteLogitsException) fails alone, and the rest of the batch goes on; only a failure of the model call itself
// ends every sequence in the batch. Needs no web stack: a C# program can run it directly on an
// EngineBackend.
// Does not handle: chunked prefill (a long prompt holds up one step), preemption, prefix sharing between jobs.
// Glossary: B active sequences, V logit width.
using Quill.Tokenization;

namespace Quill.Inference.Batching;

/// <summary>Limits of a <see cref="BatchScheduler"/>.</summary>
/// <param name="MaxBatch">Sequences decoded together.</param>
/// <param name="MaxQueue">Sequences allowed to wait for a slot; beyond it, Submit refuses.</param>
public sealed record SchedulerOptions(int MaxBatch = 16, int MaxQueue = 64);

/// <summary>Runs jobs on a model with continuous batching on its own thread.</summary>
public sealed class BatchScheduler : IDisposable
{
    private readonly IBatchModel model;
    private readonly ITokenizer tokenizer;
    private readonly Queue<GenerationJob> waiting = new();
    private readonly List<Active> active = [];
    private readonly object gate = new();
    private readonly SemaphoreSlim wake = new(0);
    private readonly Thread thread;
    private readonly float[] logits;
    private readonly int sampleVocab;
    private volatile bool stopping;
    private int activeCount;

    public BatchScheduler(IBatchModel model, ITokenizer tokenizer, SchedulerOptions options)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(options);
        if (options.MaxBatch < 1) throw new InvalidConfigException($"--max-batch must be at least 1 (got {options.MaxBatch}).");
        if (options.MaxQueue < 0) throw new InvalidConfigException($"--max-queue must not be negative (got {options.MaxQueue}).");
        this.model = model;
        this.tokenizer = tokenizer;
        Options = options;
        sampleVocab = Math.Min(model.VocabSize, tokenizer.VocabSize);
        logits = new float[(long)options.MaxBatch * model.VocabSize];
        thread = new Thread(Loop) { IsBackground = true, Name = "quill-scheduler" };
        thread.Start();
    }

    public SchedulerOptions Options { get; }

    /// <summary>Where token counts, steps and time to first token are reported (null: nowhere).</summary>
    public IBatchMetrics? Metrics { get; set; }

    public IBatchModel Model => model;

    /// <summary>Jobs waiting for a slot.</summary>
    public int QueueDepth
    {
        get
        {
            lock (gate) return waiting.Count;
        }
    }

    /// <summary>Sequences decoding now.</summary>
    public int ActiveCount => Volatile.Read(ref activeCount);

    /// <summary>
    /// Queues requests as jobs (all or none). Throws QueueFullException when they do not fit in the queue; a
    /// request whose prompt leaves no room in the context raises ContextLengthException (field "prompt").
    /// </summary>
    public IReadOnlyList<GenerationJob> Submit(IReadOnlyList<GenerationRequest> requests, CancellationToken cancel = default)
    {
        ArgumentNullException.ThrowIfNull(requests);
        foreach (var r in requests)
        {
            if (r.Prompt.Length == 0) throw new QuillException("the prompt is empty; send at least one token of text.");
            if (r.Prompt.Length >= model.ContextLength)
                throw new ContextLengthException($"the prompt has {r.Prompt.Length} tokens but the model's context is {model.ContextLength}; shorten it.", "prompt");
        }
        var jobs = requests.Select(r => new GenerationJob(r, cancel)).ToArray();
        lock (gate)
        {
            ObjectDisposedException.ThrowIf(stopping, this);
            // A request may always start when a slot is free and nobody waits; otherwise it must fit in the queue.
            int free = Math.Max(0, Options.MaxBatch - activeCount - waiting.Count);
            if (waiting.Count + jobs.Length - free > Options.MaxQueue)
            {
                Metrics?.CountRejected();
                throw new QueueFullException($"the server is busy ({waiting.Count} requests waiting, limit {Options.MaxQueue}); retry shortly.", 1);
            }
            foreach (var j in jobs) waiting.Enqueue(j);
        }
        foreach (var j in jobs) j.Registration = j.Cancel.Register(Wake);
        Wake();
        return jobs;
    }

    private sealed class Active(GenerationJob job, IModelSequence sequence, Sampler sampler, TextAssembler text)
    {
        /// <summary>Tokens generated so far (what the penalties count).</summary>
        public List<int> Generated { get; } = [];

        public List<TokenLogprob>? Top { get; } = job.Request.TopLogprobs > 0 ? [] : null;

        public GenerationJob Job { get; } = job;

        public IModelSequence Sequence { get; } = sequence;

        public Sampler Sampler { get; } = sampler;

        public TextAssembler Text { get; } = text;

        public int LastToken { get; set; }

        public bool Done { get; set; }
    }

    private void Loop()
    {
        while (!stopping)
        {
            try
            {
                Admit();
                Sweep();
                if (active.Count == 0)
                {
                    wake.Wait();
                    continue;
                }
                Step();
                Sweep();
            }
            catch (Exception ex) when (!stopping)
            {
                // A failure inside the model ends every sequence in this batch; the server keeps running.
                foreach (var a in active)
                {
                    a.Job.Fail(ex);
                    a.Sequence.Dispose();
                }
                active.Clear();
                Volatile.Write(ref activeCount, 0);
            }
        }
        lock (gate)
        {
            foreach (var j in waiting) j.Complete("", FinishReason.Cancelled);
            waiting.Clear();
        }
        foreach (var a in active)
        {
            a.Job.Complete(a.Text.Finish(), FinishReason.Cancelled);
            a.Sequence.Dispose();
        }
        active.Clear();
    }

    /// <summary>Moves waiting jobs into free slots: prefill, then the first token.</summary>
    private void Admit()
    {
        while (active.Count < Options.MaxBatch && !stopping)
        {
            GenerationJob? job;
            lock (gate)
            {
                if (!waiting.TryDequeue(out job)) return;
                Volatile.Write(ref activeCount, active.Count + 1);
            }
            if (job.Cancel.IsCancellationRequested)
            {
                job.Complete("", FinishReason.Cancelled);
                Volatile.Write(ref activeCount, active.Count);
                continue;
            }
            var r = job.Request;
            var seq = model.NewSequence();
            var a = new Active(job, seq, new Sampler(r.Sampling with { Logprobs = r.Logprobs, TopLogprobs = r.TopLogprobs }),
                new TextAssembler(tokenizer, r.StopStrings, r.Prompt[^1], r.TrimStart));
            active.Add(a);
            var row = logits.AsSpan(0, model.VocabSize);
            try
            {
                model.Prefill(seq, r.Prompt, row);
            }
            catch (QuillException ex)
            {
                // this prompt's own problem (a token the model lacks, a context overflow): only this job fails
                active.Remove(a);
                seq.Dispose();
                job.Fail(ex);
                Volatile.Write(ref activeCount, active.Count);
                continue;
            }
            Metrics?.AddPromptTokens(r.Prompt.Length);
            AcceptOrFail(a, row);
        }
    }

    /// <summary>One batched decode step over every active sequence.</summary>
    private void Step()
    {
        int b = active.Count, v = model.VocabSize;
        var seqs = new IModelSequence[b];
        var tokens = new int[b];
        for (int i = 0; i < b; i++)
        {
            seqs[i] = active[i].Sequence;
            tokens[i] = active[i].LastToken;
        }
        model.Decode(seqs, tokens, logits.AsSpan(0, b * v));
        Metrics?.CountDecodeStep(b);
        for (int i = 0; i < b; i++) AcceptOrFail(active[i], logits.AsSpan(i * v, v));
    }

    /// <summary>Accept, except that a sampling failure of this sequence (non-finite logits) ends only its job.</summary>
    private void AcceptOrFail(Active a, Span<float> row)
    {
        try
        {
            Accept(a, row);
        }
        catch (QuillException ex)
        {
            a.Done = true;
            a.Job.Fail(ex);
        }
    }

    /// <summary>Samples the next token from a row of logits, streams its text, and decides whether the job ends.</summary>
    private void Accept(Active a, Span<float> row)
    {
        var job = a.Job;
        var r = job.Request;
        int id = a.Sampler.Sample(row[..sampleVocab], System.Runtime.InteropServices.CollectionsMarshal.AsSpan(a.Generated), out float logprob, a.Top);
        a.Generated.Add(id);
        job.CompletionTokens++;
        Metrics?.AddCompletionTokens(1);
        if (job.FirstToken == null)
        {
            job.FirstToken = DateTime.UtcNow;
            Metrics?.ObserveTimeToFirstToken(job.FirstToken.Value - job.Submitted);
        }
        TokenChoice? lp = r.Logprobs ? Describe(id, logprob, a.Top) : null;
        a.LastToken = id;
        if (r.StopTokens.Contains(id))
        {
            if (lp != null) job.Emit("", lp);
            End(a, FinishReason.Stop);
            return;
        }
        string text = a.Text.Add(id);
        if (text.Length > 0 || lp != null) job.Emit(text, lp);
        if (a.Text.Stopped) End(a, FinishReason.Stop);
        else if (job.CompletionTokens >= r.MaxTokens || a.Sequence.Length >= model.ContextLength) End(a, FinishReason.Length);
    }

    private TokenChoice Describe(int id, float logprob, List<TokenLogprob>? top) =>
        new(id, TokenText(id, out byte[] bytes), bytes, logprob,
            top == null ? [] : top.Select(t => new TokenChoice(t.Id, TokenText(t.Id, out byte[] b), b, t.Logprob, [])).ToArray());

    private string TokenText(int id, out byte[] bytes)
    {
        bytes = tokenizer.DecodeBytes([id]);
        return System.Text.Encoding.UTF8.GetString(bytes);
    }

    private static void End(Active a, FinishReason reason)
    {
        a.Done = true;
        a.Job.Complete(a.Text.Finish(), reason);
    }

    /// <summary>Drops finished and cancelled sequences.</summary>
    private void Sweep()
    {
        for (int i = active.Count - 1; i >= 0; i--)
        {
            var a = active[i];
            if (!a.Done && a.Job.Cancel.IsCancellationRequested)
            {
                a.Done = true;
                a.Job.Complete("", FinishReason.Cancelled);
            }
            if (!a.Done) continue;
            a.Sequence.Dispose();
            active.RemoveAt(i);
        }
        Volatile.Write(ref activeCount, active.Count);
    }

    private void Wake()
    {
        try
        {
            wake.Release();
        }
        catch (ObjectDisposedException)
        {
            // a client left after shutdown: nothing to wake
        }
    }

    public void Dispose()
    {
        lock (gate) stopping = true;
        Wake();
        thread.Join();
        wake.Dispose();
    }
}
