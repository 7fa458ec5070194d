// `quill bench serve`: aggregate decode tokens/s of a real server with 1, 4, 16 ... concurrent streaming clients
// (JSON lines; "ratio" is the speed-up over one client).
using System.CommandLine;
using Quill.Benchmarks;

namespace Quill.Cli.Commands;

internal static class BenchServeCommand
{
    public static Command Create()
    {
        var model = new Option<string?>("--model") { Description = "Model file or folder (default: --shape with random weights)" };
        var shape = new Option<string>("--shape") { Description = "Shape with random weights when no --model: stories15M or stories110M", DefaultValueFactory = _ => "stories15M" };
        var tokenizer = new Option<string?>("--tokenizer") { Description = "Tokenizer file (for a shape: default a byte tokenizer)" };
        var clients = new Option<string>("--clients") { Description = "Concurrent client counts, comma-separated", DefaultValueFactory = _ => "1,4,16" };
        var tokens = new Option<int>("--tokens") { Description = "Tokens each client asks for", DefaultValueFactory = _ => 128 };
        var cmd = new Command("serve", "Aggregate decode tokens/s with 1, 4, 16 concurrent streaming clients.") { model, shape, tokenizer, clients, tokens };
        cmd.SetAction(r =>
        {
            var counts = r.GetValue(clients)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                .Select(s => int.TryParse(s, System.Globalization.CultureInfo.InvariantCulture, out int n) ? n : throw new InvalidConfigException($"--clients: '{s}' is not a number; write e.g. 1,4,16."))
                .ToArray();
            var options = new ServeBenchOptions(r.GetValue(model), r.GetValue(shape)!, r.GetValue(tokenizer), counts, r.GetValue(tokens));
            foreach (var result in ServeBenchmark.RunAsync(options, Console.Error).GetAwaiter().GetResult()) Console.WriteLine(result.ToJson());
        });
        return cmd;
    }
}
