// `quill bench lora`: LoRA (or QLoRA) fine-tuning tokens/s on a TinyStories shape, against PyTorch in the same run.
using System.CommandLine;
using Quill.Benchmarks;
using Quill.Training;

namespace Quill.Cli.Commands;

internal static class BenchLoraCommand
{
    public static Command Create()
    {
        var shape = new Option<string>("--shape") { Description = "stories15M or stories110M (random weights)", DefaultValueFactory = _ => "stories15M" };
        var batch = new Option<int>("--batch") { Description = "Sequences per step", DefaultValueFactory = _ => 4 };
        var seq = new Option<int>("--seq") { Description = "Tokens per sequence", DefaultValueFactory = _ => 256 };
        var rank = new Option<int>("--lora-rank") { Description = "LoRA rank r (on q, k, v, o)", DefaultValueFactory = _ => 8 };
        var qlora = new Option<string?>("--qlora-type") { Description = "Run Quill's step on the base quantized in memory to this type (q4_0, nf4, ...); the peer stays f32 LoRA" };
        var steps = new Option<int>("--steps") { Description = "Timed steps per run", DefaultValueFactory = _ => 3 };
        var runs = new Option<int>("--runs") { Description = "Runs (the median is reported)", DefaultValueFactory = _ => 3 };
        var threads = new Option<int>("--threads") { Description = "Threads for Quill and the peer (default: all cores)" };
        var masked = new Option<double>("--masked") { Description = "Fraction of each row's targets masked at its start, as a prompt's (0 default: every position has a target)" };
        var noPeer = new Option<bool>("--no-peer") { Description = "Measure Quill alone" };
        var profile = new Option<bool>("--profile") { Description = "Also print the time per op of one step" };
        var rounds = BenchTrainCommand.RoundsOption();
        var cmd = new Command("lora", "LoRA fine-tuning tokens/s (r 8 on q, k, v, o; forward, backward, AdamW on the adapter) against PyTorch.")
            { shape, batch, seq, rank, qlora, masked, steps, runs, threads, noPeer, profile, rounds };
        cmd.SetAction(r =>
        {
            var quant = r.GetValue(qlora) is string qt ? new LoraRunConfig { Method = "qlora", QuantType = qt }.ParsedQuantType : (Quantization.GgmlType?)null;
            var prof = r.GetValue(profile) ? new Dictionary<string, double>() : null;
            var o = new LoraBenchOptions(r.GetValue(shape)!, r.GetValue(batch), r.GetValue(seq), r.GetValue(steps), r.GetValue(runs), r.GetValue(threads),
                r.GetValue(rank), quant, !r.GetValue(noPeer), Masked: r.GetValue(masked)) { Rounds = r.GetValue(rounds) };
            var result = LoraBenchmark.Run(o, prof, Console.Error);
            Console.WriteLine(result.ToJson());
            BenchTrainCommand.PrintProfile(prof);
        });
        return cmd;
    }
}
