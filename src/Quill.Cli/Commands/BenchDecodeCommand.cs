// `quill bench decode`: decode / prefill tokens/s at batch 1 and the memory-bandwidth limit, against PyTorch.
using System.CommandLine;
using Quill.Benchmarks;

namespace Quill.Cli.Commands;

internal static class BenchDecodeCommand
{
    public static Command Create()
    {
        var model = new Option<string?>("--model") { Description = "Model file or folder to time" };
        var shape = new Option<string?>("--shape") { Description = "Random-weight Llama of this shape: stories15M, stories110M, or mixtral15M (stories15M with 8 experts, 2 per token)" };
        var dtype = new Option<string?>("--dtype") { Description = "Weight type: f32, q8_0, q4_0, ... (default: f32 for --shape, as stored for --model)" };
        var tokens = new Option<int>("--tokens") { Description = "Tokens decoded per run", DefaultValueFactory = _ => 128 };
        var prompt = new Option<int>("--prompt-tokens") { Description = "Prompt length for the prefill figure", DefaultValueFactory = _ => 128 };
        var runs = new Option<int>("--runs") { Description = "Runs (the median is reported)", DefaultValueFactory = _ => 5 };
        var threads = new Option<int>("--threads") { Description = "Threads for Quill and the peer (default: all cores)" };
        var noPeer = new Option<bool>("--no-peer") { Description = "Skip the PyTorch peer" };
        var cmd = new Command("decode", "Decode and prefill tokens/s against the memory-bandwidth limit and PyTorch.") { model, shape, dtype, tokens, prompt, runs, threads, noPeer };
        cmd.SetAction(r =>
        {
            var o = new DecodeBenchOptions(r.GetValue(model), r.GetValue(shape), r.GetValue(dtype), r.GetValue(tokens), r.GetValue(runs), r.GetValue(threads), r.GetValue(prompt), !r.GetValue(noPeer));
            foreach (var res in DecodeBenchmark.Run(o, Console.Error)) Console.WriteLine(res.ToJson());
        });
        return cmd;
    }
}
