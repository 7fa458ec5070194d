// --early-stop N and --early-stop-threshold D of `quill train` and `quill finetune`: the train section's
// early_stopping_patience / early_stopping_threshold (see Training.Trainer), set from the command line.
using System.CommandLine;
using Quill.Training;

namespace Quill.Cli.Commands;

internal static class EarlyStopping
{
    public static Option<int?> PatienceOption() => new("--early-stop")
    {
        Description = "Stop when N evaluations in a row have not lowered the validation loss (the best weights are kept in OUT/best; default: the config's train.early_stopping_patience, else never)",
    };

    public static Option<float?> ThresholdOption() => new("--early-stop-threshold")
    {
        Description = "With --early-stop: the least fall of the validation loss that counts as an improvement (default 0)",
    };

    /// <summary>Copies the options given into train; the threshold alone is refused.</summary>
    public static void Apply(ParseResult r, Option<int?> patience, Option<float?> threshold, TrainConfig train)
    {
        if (r.GetValue(patience) is int n)
        {
            if (n < 1) throw new InvalidConfigException($"--early-stop takes the number of evaluations without improvement to stop after, at least 1 (got {n}).");
            train.EarlyStoppingPatience = n;
        }
        if (r.GetValue(threshold) is float t)
        {
            if (train.EarlyStoppingPatience == 0) throw new InvalidConfigException("--early-stop-threshold goes with --early-stop N (or the config's train.early_stopping_patience).");
            if (!(t >= 0) || float.IsInfinity(t)) throw new InvalidConfigException($"--early-stop-threshold must be a finite number >= 0 (got {t}).");
            train.EarlyStoppingThreshold = t;
        }
    }
}
