// Named starting points for `quill train --preset NAME`: the model shapes of the README and training settings
// that work for them on a CPU.
using Quill.Models;

namespace Quill.Training;

/// <summary>Built-in run configurations.</summary>
public static class Presets
{
    public static IReadOnlyList<string> Names { get; } = ["shakespeare-char", "gpt-mini", "llama-mini", "gpt2-124m", "tiny"];

    /// <summary>The preset's config (a fresh copy), or InvalidConfigException listing the names.</summary>
    public static RunConfig Get(string name) => name switch
    {
        "shakespeare-char" => Make(name,
            new ModelConfig { Arch = "gpt2", VocabSize = 65, NLayer = 4, NHead = 4, NEmbd = 256, BlockSize = 256 },
            new TrainConfig { BatchSize = 16, MaxSteps = 3000, LearningRate = 1e-3f, MinLr = 1e-4f, WarmupSteps = 100, Beta2 = 0.99f, EvalEvery = 100, CheckpointEvery = 100 }),
        "gpt-mini" => Make(name,
            new ModelConfig { Arch = "gpt2", VocabSize = 50304, NLayer = 6, NHead = 6, NEmbd = 384, BlockSize = 256 },
            new TrainConfig { BatchSize = 8, MaxSteps = 5000, LearningRate = 6e-4f, WarmupSteps = 100 }),
        "llama-mini" => Make(name,
            new ModelConfig { Arch = "llama", VocabSize = 50304, NLayer = 6, NHead = 6, NKvHead = 6, NEmbd = 384, BlockSize = 256, MlpHidden = 1024 },
            new TrainConfig { BatchSize = 8, MaxSteps = 5000, LearningRate = 6e-4f, WarmupSteps = 100 }),
        "gpt2-124m" => Make(name,
            new ModelConfig { Arch = "gpt2", VocabSize = 50304, NLayer = 12, NHead = 12, NEmbd = 768, BlockSize = 1024 },
            new TrainConfig { BatchSize = 4, MaxSteps = 10000, LearningRate = 6e-4f, WarmupSteps = 200 }),
        // What quickstart trains: small enough for a few minutes on two cores.
        "tiny" => Make(name,
            new ModelConfig { Arch = "gpt2", VocabSize = 256, NLayer = 4, NHead = 4, NEmbd = 128, BlockSize = 128 },
            new TrainConfig { BatchSize = 16, MaxSteps = 2000, LearningRate = 2e-3f, MinLr = 2e-4f, WarmupSteps = 100, Beta2 = 0.99f, EvalEvery = 250, CheckpointEvery = 250 }),
        _ => throw new InvalidConfigException($"unknown preset '{name}'; choose one of: {string.Join(", ", Names)}."),
    };

    private static RunConfig Make(string name, ModelConfig m, TrainConfig t) => new() { Model = m, Train = t, Preset = name };
}
