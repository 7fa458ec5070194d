// `quill bench ppl`: `quill eval ppl` tokens/s against llama.cpp's forward on the same GGUF and text.
using System.CommandLine;
using Quill.Benchmarks;

namespace Quill.Cli.Commands;

internal static class BenchPplCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "GGUF model (llama.cpp must read it too)", Required = true };
        var data = new Option<string>("--data") { Description = "UTF-8 text to score", Required = true };
        var context = new Option<int>("--context") { Description = "Tokens per window", DefaultValueFactory = _ => 512 };
        var chunks = new Option<int>("--chunks") { Description = "Windows to score", DefaultValueFactory = _ => 20 };
        var threads = new Option<int>("--threads") { Description = "Threads for Quill and the peer (default: all cores)" };
        var noPeer = new Option<bool>("--no-peer") { Description = "Skip llama.cpp" };
        var cmd = new Command("ppl", "Perplexity tokens/s against llama.cpp on the same GGUF and text.") { model, data, context, chunks, threads, noPeer };
        cmd.SetAction(r =>
        {
            var o = new PerplexityBenchOptions(r.GetValue(model)!, r.GetValue(data)!, r.GetValue(context), r.GetValue(chunks), r.GetValue(threads), !r.GetValue(noPeer));
            foreach (var res in PerplexityBenchmark.Run(o, Console.Error)) Console.WriteLine(res.ToJson());
        });
        return cmd;
    }
}
