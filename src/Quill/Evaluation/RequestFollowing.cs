// Request following: does a model asked "Tell me a story about a fox named Ben who finds a shell." tell a story with
// that animal and that name, and then stop? For each request (Data.StoryInstructions' held-out set) the model
// answers greedily in the layout `quill chat` uses for it (Inference.ChatLayout: its chat template, else the plain
// "User: / Assistant:" transcript) until its end-of-sequence token (EOS or an end-of-turn id) or MaxTokens. A reply
// follows the request when it names the requested animal and the requested name as whole words (case-sensitive:
// "Ben", "fox"; "foxes" or "Benny" do not count) and ended with end-of-sequence before the limit. The object is
// checked and reported too but not required. Requests run in batches (InferenceEngine.DecodeBatch: one pass over the
// weights per step for the whole batch), so 200 story-length replies take seconds on a small model.
// The scorer (Score) is separate from the generation, so it is tested on scripted replies, and Evaluate also takes
// any answering function.
// Does not handle: sampling (greedy only), stop strings (a reply counts as stopped only on an end-of-sequence token),
// judging whether the story is good.
using Quill.Data;
using Quill.Inference;

namespace Quill.Evaluation;

/// <summary>How the model answers during the evaluation.</summary>
public sealed record RequestFollowingOptions
{
    /// <summary>Most tokens a reply may take; a reply still going at the limit did not stop.</summary>
    public int MaxTokens { get; init; } = 800;

    /// <summary>Requests decoded together (each holds a KV cache of prompt + MaxTokens positions).</summary>
    public int BatchSize { get; init; } = 50;
}

/// <summary>One reply and how it was judged.</summary>
/// <param name="Request">The request answered.</param>
/// <param name="Reply">The reply's text (without the end-of-sequence token, leading whitespace dropped).</param>
/// <param name="Stopped">Whether the reply ended with an end-of-sequence token within the limit.</param>
/// <param name="UsesAnimal">Whether the requested animal appears as a word.</param>
/// <param name="UsesName">Whether the requested name appears as a word.</param>
/// <param name="UsesThing">Whether the requested object appears as a word (reported, not required).</param>
public sealed record JudgedReply(StoryInstruction Request, string Reply, bool Stopped, bool UsesAnimal, bool UsesName, bool UsesThing)
{
    /// <summary>The reply used the requested animal and name and then stopped.</summary>
    public bool Followed => UsesAnimal && UsesName && Stopped;
}

/// <summary>The judged replies of an evaluation and their rates.</summary>
public sealed record RequestFollowingReport(IReadOnlyList<JudgedReply> Replies)
{
    /// <summary>Fraction of replies that followed their request (0 when there are none).</summary>
    public double Score => Rate(r => r.Followed);

    /// <summary>Number of replies that followed their request.</summary>
    public int FollowedCount => Replies.Count(r => r.Followed);

    /// <summary>Fraction of replies that stopped.</summary>
    public double StopRate => Rate(r => r.Stopped);

    /// <summary>Fraction of replies naming the requested animal.</summary>
    public double AnimalRate => Rate(r => r.UsesAnimal);

    /// <summary>Fraction of replies using the requested name.</summary>
    public double NameRate => Rate(r => r.UsesName);

    /// <summary>Fraction of replies mentioning the requested object.</summary>
    public double ThingRate => Rate(r => r.UsesThing);

    /// <summary>One line: "followed 183/200 (91.5%): animal 95.0%, name 97.0%, object 93.5%, stopped 99.0%".</summary>
    public string Describe() => string.Create(System.Globalization.CultureInfo.InvariantCulture,
        $"followed {FollowedCount}/{Replies.Count} ({Score * 100:F1}%): animal {AnimalRate * 100:F1}%, name {NameRate * 100:F1}%, object {ThingRate * 100:F1}%, stopped {StopRate * 100:F1}%");

    private double Rate(Func<JudgedReply, bool> f) => Replies.Count == 0 ? 0 : (double)Replies.Count(f) / Replies.Count;
}

/// <summary>Scores how often a model tells the requested story and stops.</summary>
public static class RequestFollowing
{
    /// <summary>Judges one reply: the requested animal, name and object as whole words, and whether it stopped.</summary>
    public static JudgedReply Score(StoryInstruction request, string reply, bool stopped)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(reply);
        var c = request.Cast;
        return new JudgedReply(request, reply, stopped, HasWord(reply, c.Animal), HasWord(reply, c.Name), HasWord(reply, c.Thing));
    }

    /// <summary>Judges the replies answer gives (its text and whether it stopped) to each request.</summary>
    public static RequestFollowingReport Evaluate(IReadOnlyList<StoryInstruction> requests, Func<StoryInstruction, (string Reply, bool Stopped)> answer)
    {
        ArgumentNullException.ThrowIfNull(requests);
        ArgumentNullException.ThrowIfNull(answer);
        return new RequestFollowingReport([.. requests.Select(r =>
        {
            var (reply, stopped) = answer(r);
            return Score(r, reply, stopped);
        })]);
    }

    /// <summary>
    /// Answers every request with the model (greedy, batched, in its chat layout) and judges the replies.
    /// progress gets the number of requests answered so far.
    /// </summary>
    public static RequestFollowingReport Evaluate(InferenceModel model, IReadOnlyList<StoryInstruction> requests, RequestFollowingOptions? options = null,
        IProgress<int>? progress = null, CancellationToken cancel = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(requests);
        options ??= new RequestFollowingOptions();
        if (options.MaxTokens < 1) throw new InvalidConfigException($"the evaluation's token limit must be at least 1 (got {options.MaxTokens}).");
        if (options.BatchSize < 1) throw new InvalidConfigException($"the evaluation's batch size must be at least 1 (got {options.BatchSize}).");
        var tokenizer = model.Tokenizer ?? throw new InvalidConfigException($"{model.Source} has no tokenizer; the evaluation needs one to write the requests.");
        var layout = new ChatLayout(tokenizer, model.ChatTemplate, model.Spec.Arch, model.AddBos);
        var stops = new HashSet<int>(model.ExtraStopIds);
        if (tokenizer.EosId >= 0) stops.Add(tokenizer.EosId);
        foreach (int id in layout.StopTokens) stops.Add(id);
        var prompts = requests.Select(r => layout.Encode([new ChatTurn("user", r.Instruction)])).ToArray();
        int longest = prompts.Length == 0 ? 0 : prompts.Max(p => p.Length);
        var engine = new InferenceEngine(model, Math.Min(model.Spec.MaxContext, longest + options.MaxTokens));
        var judged = new List<JudgedReply>(requests.Count);
        for (int start = 0; start < requests.Count; start += options.BatchSize)
        {
            int n = Math.Min(options.BatchSize, requests.Count - start);
            var replies = AnswerBatch(engine, prompts.AsSpan(start, n), stops, Math.Min(tokenizer.VocabSize, model.Spec.VocabSize), options.MaxTokens, cancel);
            for (int i = 0; i < n; i++)
            {
                string text = tokenizer.Decode(replies[i].Ids.ToArray()).TrimStart();
                judged.Add(Score(requests[start + i], text, replies[i].Stopped));
            }
            progress?.Report(judged.Count);
        }
        return new RequestFollowingReport(judged);
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
                throw new InvalidConfigException($"a request of {prompts[i].Length} tokens leaves no room for a reply in the model's context of {engine.ContextLength}; lower the token limit.");
            caches[i] = engine.CreateCache(Math.Min(engine.ContextLength, prompts[i].Length + maxTokens));
            engine.Forward(caches[i], prompts[i], logits.AsSpan(i * v, v));
            results[i] = ([], false);
        }
        var active = Enumerable.Range(0, n).ToList();
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

    /// <summary>Whether word occurs in text with no letter or digit right before or after it.</summary>
    internal static bool HasWord(string text, string word)
    {
        for (int at = text.IndexOf(word, StringComparison.Ordinal); at >= 0; at = text.IndexOf(word, at + 1, StringComparison.Ordinal))
        {
            bool before = at == 0 || !char.IsLetterOrDigit(text[at - 1]);
            int end = at + word.Length;
            bool after = end == text.Length || !char.IsLetterOrDigit(text[end]);
            if (before && after) return true;
        }
        return false;
    }
}
