// A model's greedy replies to single user messages, as the evaluations need them: each message is laid out the way
// `quill chat` lays it out for that model (Inference.ChatLayout: its chat template, else the plain "User: /
// Assistant:" transcript), and the reply runs until an end-of-sequence token (EOS, the model's end-of-turn ids or the
// template's stop tokens) or MaxTokens. Messages run in batches: each is prefilled on its own, then every unfinished
// reply advances together (InferenceEngine.DecodeBatch reads the weights once per step for the whole batch), so 200
// story-length replies of a small model take seconds.
// Does not handle: sampling (greedy only), stop strings (a reply counts as stopped only on an end-of-sequence
// token), multi-turn conversations.
using Quill.Inference;

namespace Quill.Evaluation;

/// <summary>How long replies may be and how many run together.</summary>
public sealed record AnswerOptions
{
    /// <summary>Most tokens a reply may take; a reply still going at the limit did not stop.</summary>
    public int MaxTokens { get; init; } = 512;

    /// <summary>Messages decoded together (each holds a KV cache of prompt + MaxTokens positions).</summary>
    public int BatchSize { get; init; } = 50;
}

/// <summary>A reply: its text (without the end-of-sequence token, leading whitespace dropped) and whether it stopped.</summary>
public sealed record ModelAnswer(string Text, bool Stopped);

/// <summary>Greedy, batched replies of a model to user messages.</summary>
public static class GreedyAnswers
{
    /// <summary>The model's reply to each message; progress gets the number answered so far.</summary>
    public static IReadOnlyList<ModelAnswer> Answer(InferenceModel model, IReadOnlyList<string> userMessages, AnswerOptions? options = null,
        IProgress<int>? progress = null, CancellationToken cancel = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(userMessages);
        options ??= new AnswerOptions();
        if (options.MaxTokens < 1) throw new InvalidConfigException($"the evaluation's token limit must be at least 1 (got {options.MaxTokens}).");
        if (options.BatchSize < 1) throw new InvalidConfigException($"the evaluation's batch size must be at least 1 (got {options.BatchSize}).");
        var tokenizer = model.Tokenizer ?? throw new InvalidConfigException($"{model.Source} has no tokenizer; the evaluation needs one to write the messages.");
        var layout = new ChatLayout(tokenizer, model.ChatTemplate, model.Spec.Arch, model.AddBos);
        var stops = new HashSet<int>(model.ExtraStopIds);
        if (tokenizer.EosId >= 0) stops.Add(tokenizer.EosId);
        foreach (int id in layout.StopTokens) stops.Add(id);
        var prompts = userMessages.Select(m => layout.Encode([new ChatTurn("user", m)])).ToArray();
        int longest = prompts.Length == 0 ? 0 : prompts.Max(p => p.Length);
        var engine = new InferenceEngine(model, Math.Min(model.Spec.MaxContext, longest + options.MaxTokens));
        int vocab = Math.Min(tokenizer.VocabSize, model.Spec.VocabSize);
        var answers = new List<ModelAnswer>(prompts.Length);
        for (int start = 0; start < prompts.Length; start += options.BatchSize)
        {
            int n = Math.Min(options.BatchSize, prompts.Length - start);
            foreach (var (ids, stopped) in AnswerBatch(engine, prompts.AsSpan(start, n), stops, vocab, options.MaxTokens, cancel))
                answers.Add(new ModelAnswer(tokenizer.Decode(ids.ToArray()).TrimStart(), stopped));
            progress?.Report(answers.Count);
        }
        return answers;
    }

    /// <summary>Greedy replies to a batch of prompts: prefill each, then decode all unfinished rows together.</summary>
    private static (List<int> Ids, bool Stopped)[] AnswerBatch(InferenceEngine engine, ReadOnlySpan<int[]> prompts, HashSet<int> stops, int vocab,
        int maxTokens, CancellationToken cancel)
    {
        int n = prompts.Length, v = engine.Model.Spec.VocabSize;
        var caches = new KvCache[n];
        var results = new (List<int> Ids, bool Stopped)[n];
        var next = new int[n];
        var logits = new float[(long)n * v];
        for (int i = 0; i < n; i++)
        {
            if (prompts[i].Length + 1 > engine.ContextLength)
                throw new InvalidConfigException($"a message of {prompts[i].Length} tokens leaves no room for a reply in the model's context of {engine.ContextLength}; shorten it.");
            caches[i] = engine.CreateCache(Math.Min(engine.ContextLength, prompts[i].Length + maxTokens));
            engine.Forward(caches[i], prompts[i], logits.AsSpan(i * v, v));
            results[i] = ([], false);
        }
        var active = Enumerable.Range(0, n).ToList(); // row k of logits belongs to active[k]
        while (active.Count > 0)
        {
            cancel.ThrowIfCancellationRequested();
            var still = new List<int>(active.Count);
            for (int k = 0; k < active.Count; k++)
            {
                int i = active[k];
                int token = ArgMax(logits.AsSpan(k * v, vocab));
                if (stops.Contains(token))
                {
                    results[i].Stopped = true;
                    continue;
                }
                results[i].Ids.Add(token);
                if (results[i].Ids.Count >= maxTokens || caches[i].Remaining < 1) continue;
                next[still.Count] = token;
                still.Add(i);
            }
            active = still;
            if (active.Count > 0) engine.DecodeBatch([.. active.Select(i => caches[i])], next.AsSpan(0, active.Count), logits);
        }
        return results;
    }

    /// <summary>Index of the largest logit (the first on ties), as greedy sampling picks.</summary>
    private static int ArgMax(ReadOnlySpan<float> logits)
    {
        int best = 0;
        for (int i = 1; i < logits.Length; i++)
        {
            if (logits[i] > logits[best]) best = i;
        }
        return best;
    }
}
