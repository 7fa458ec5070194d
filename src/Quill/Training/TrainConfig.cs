// The optimisation side of a run: batch shape, learning-rate schedule, AdamW settings, clipping, evaluation and
// checkpoint cadence, seed. Lives in the "train" section of a config file next to the "model" section.
using System.Text.Json.Serialization;

namespace Quill.Training;

/// <summary>Training hyperparameters.</summary>
public sealed class TrainConfig
{
    /// <summary>Sequences per micro-batch (B).</summary>
    [JsonPropertyName("batch_size")] public int BatchSize { get; set; } = 8;

    /// <summary>Tokens per sequence (T); 0 = the model's block_size.</summary>
    [JsonPropertyName("seq_len")] public int SeqLen { get; set; }

    /// <summary>
    /// Fine-tuning: pack several examples into each row, none attending to another, instead of one example per padded
    /// row (the default). Not written when false.
    /// </summary>
    [JsonPropertyName("packing")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)]
    public bool Packing { get; set; }

    /// <summary>Tokens per optimizer step; a multiple of B*T (gradient accumulation); 0 = one micro-batch.</summary>
    [JsonPropertyName("tokens_per_step")] public int TokensPerStep { get; set; }

    /// <summary>Planned number of steps (the schedule decays over it); --max-steps overrides.</summary>
    [JsonPropertyName("max_steps")] public int MaxSteps { get; set; } = 1000;

    [JsonPropertyName("learning_rate")] public float LearningRate { get; set; } = 6e-4f;

    /// <summary>Learning rate at the end of the cosine decay (default lr / 10).</summary>
    [JsonPropertyName("min_lr")] public float? MinLr { get; set; }

    [JsonPropertyName("warmup_steps")] public int WarmupSteps { get; set; } = 100;

    [JsonPropertyName("weight_decay")] public float WeightDecay { get; set; } = 0.1f;

    /// <summary>Also decay embedding matrices (norm weights and biases are never decayed).</summary>
    [JsonPropertyName("decay_embeddings")] public bool DecayEmbeddings { get; set; }

    [JsonPropertyName("beta1")] public float Beta1 { get; set; } = 0.9f;

    [JsonPropertyName("beta2")] public float Beta2 { get; set; } = 0.95f;

    [JsonPropertyName("eps")] public float Eps { get; set; } = 1e-8f;

    /// <summary>Global gradient-norm clip (0 = off).</summary>
    [JsonPropertyName("grad_clip")] public float GradClip { get; set; } = 1f;

    /// <summary>Evaluate validation loss every N steps (0 = only at the end).</summary>
    [JsonPropertyName("eval_every")] public int EvalEvery { get; set; } = 100;

    /// <summary>Batches averaged for the validation loss (the same windows every time).</summary>
    [JsonPropertyName("eval_batches")] public int EvalBatches { get; set; } = 20;

    /// <summary>
    /// Stop when this many evaluations in a row have not lowered the best validation loss by more than
    /// <see cref="EarlyStoppingThreshold"/> (0 = never; Hugging Face's EarlyStoppingCallback). The weights at the best
    /// evaluation are kept in OUT/best. Not written when 0.
    /// </summary>
    [JsonPropertyName("early_stopping_patience")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)]
    public int EarlyStoppingPatience { get; set; }

    /// <summary>With early stopping: the least fall of the validation loss that counts as an improvement (default 0).</summary>
    [JsonPropertyName("early_stopping_threshold")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)]
    public float EarlyStoppingThreshold { get; set; }

    /// <summary>Save the checkpoint every N steps (0 = only at the end); --checkpoint-every overrides.</summary>
    [JsonPropertyName("checkpoint_every")] public int CheckpointEvery { get; set; } = 100;

    [JsonPropertyName("seed")] public ulong Seed { get; set; } = 1337;

    /// <summary>Skip updates whose loss or gradient norm is non-finite or a far outlier.</summary>
    [JsonPropertyName("skip_outliers")] public bool SkipOutliers { get; set; } = true;

    /// <summary>Glob patterns of the parameter names to train ('*' any run); empty = all. Everything else is frozen: no gradient, no optimizer state.</summary>
    [JsonPropertyName("trainable")] public List<string> Trainable { get; set; } = [];

    /// <summary>Parameter groups with their own learning-rate scale and weight decay; the first group whose pattern matches a name wins.</summary>
    [JsonPropertyName("param_groups")] public List<ParamGroupConfig> ParamGroups { get; set; } = [];

    [JsonIgnore] public float FinalLr => MinLr ?? LearningRate / 10f;

    public TrainConfig Clone()
    {
        var c = (TrainConfig)MemberwiseClone();
        c.Trainable = [.. Trainable];
        c.ParamGroups = [.. ParamGroups.Select(g => g.Clone())];
        return c;
    }

    /// <summary>Throws InvalidConfigException naming the first impossible field.</summary>
    public void Validate(int blockSize, string source = "train config")
    {
        void Fail(string msg) => throw new InvalidConfigException($"{source}: {msg}");
        if (BatchSize < 1) Fail($"batch_size must be at least 1 (got {BatchSize}).");
        if (SeqLen < 0 || SeqLen > blockSize) Fail($"seq_len {SeqLen} must be between 1 and the model's block_size {blockSize} (0 = block_size).");
        int micro = BatchSize * (SeqLen > 0 ? SeqLen : blockSize);
        if (TokensPerStep < 0 || TokensPerStep % micro != 0)
            Fail($"tokens_per_step {TokensPerStep} must be a multiple of batch_size * seq_len = {micro}.");
        if (MaxSteps < 1) Fail($"max_steps must be at least 1 (got {MaxSteps}).");
        if (!(LearningRate > 0)) Fail($"learning_rate must be positive (got {LearningRate}).");
        if (WarmupSteps < 0) Fail($"warmup_steps must not be negative (got {WarmupSteps}).");
        if (Beta1 < 0 || Beta1 >= 1 || Beta2 < 0 || Beta2 >= 1) Fail("beta1 and beta2 must be in [0, 1).");
        if (WeightDecay < 0 || GradClip < 0) Fail("weight_decay and grad_clip must not be negative.");
        if (EvalEvery < 0 || EvalBatches < 1 || CheckpointEvery < 0) Fail("eval_every and checkpoint_every must be >= 0 and eval_batches >= 1.");
        if (EarlyStoppingPatience < 0) Fail($"early_stopping_patience must not be negative (got {EarlyStoppingPatience}; 0 turns early stopping off).");
        if (!(EarlyStoppingThreshold >= 0) || float.IsInfinity(EarlyStoppingThreshold)) Fail($"early_stopping_threshold must be a finite number >= 0 (got {EarlyStoppingThreshold}).");
        if (Trainable.Any(string.IsNullOrWhiteSpace)) Fail("trainable holds an empty pattern; give parameter-name globs such as '*norm*'.");
        for (int i = 0; i < ParamGroups.Count; i++)
        {
            var g = ParamGroups[i];
            if (string.IsNullOrWhiteSpace(g.Match)) Fail($"param_groups[{i}].match is empty; give a parameter-name glob such as '*embed*'.");
            if (!(g.LrScale >= 0) || float.IsInfinity(g.LrScale)) Fail($"param_groups[{i}].lr_scale must be a finite number >= 0 (got {g.LrScale}).");
            if (g.WeightDecay is < 0) Fail($"param_groups[{i}].weight_decay must not be negative (got {g.WeightDecay}).");
        }
    }
}

/// <summary>One parameter group: the parameters whose names match, their learning-rate scale and weight decay.</summary>
public sealed class ParamGroupConfig
{
    /// <summary>Glob over parameter names ('*' any run, '?' one character).</summary>
    [JsonPropertyName("match")] public string Match { get; set; } = "";

    /// <summary>The group's learning rate is the schedule's times this.</summary>
    [JsonPropertyName("lr_scale")] public float LrScale { get; set; } = 1f;

    /// <summary>The group's weight decay (null = the default rule: matrices decayed, norms, biases and embeddings not).</summary>
    [JsonPropertyName("weight_decay")] public float? WeightDecay { get; set; }

    public ParamGroupConfig Clone() => (ParamGroupConfig)MemberwiseClone();
}

/// <summary>Linear warmup, then cosine decay from the peak to the final rate at the planned last step.</summary>
public static class LrSchedule
{
    public static float At(TrainConfig c, int step, int maxSteps)
    {
        ArgumentNullException.ThrowIfNull(c);
        if (step < c.WarmupSteps) return c.LearningRate * (step + 1) / c.WarmupSteps;
        if (step >= maxSteps) return c.FinalLr;
        double progress = (double)(step - c.WarmupSteps) / Math.Max(1, maxSteps - c.WarmupSteps);
        double coeff = 0.5 * (1.0 + Math.Cos(Math.PI * progress));
        return (float)(c.FinalLr + coeff * (c.LearningRate - c.FinalLr));
    }
}
