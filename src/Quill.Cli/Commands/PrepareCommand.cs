// `quill prepare`: tokenize text files into shards with a manifest.
using System.CommandLine;
using Quill.Data;

namespace Quill.Cli.Commands;

internal static class PrepareCommand
{
    public static Command Create()
    {
        var input = new Option<string[]>("--input") { Description = "Text (.txt) or JSONL ({\"text\": ...} per line) files", Required = true, AllowMultipleArgumentsPerToken = true };
        var tokenizer = new Option<string>("--tokenizer") { Description = "char (trained on the input), byte, or a tokenizer file", DefaultValueFactory = _ => "char" };
        var outDir = new Option<string>("--out") { Description = "Output folder", Required = true };
        var valFraction = new Option<double>("--val-fraction") { Description = "Fraction held out for validation", DefaultValueFactory = _ => 0.1 };
        var cmd = new Command("prepare", "Tokenize text into training shards (uint16/uint32) with a JSON manifest.") { input, tokenizer, outDir, valFraction };
        cmd.SetAction(r =>
        {
            var result = DatasetPreparer.Prepare(new PrepareOptions(r.GetValue(input)!, r.GetValue(tokenizer)!, r.GetValue(outDir)!, r.GetValue(valFraction)));
            Print(result);
        });
        return cmd;
    }

    public static void Print(PrepareResult result)
    {
        var m = result.Manifest;
        Console.WriteLine($"prepared {result.OutDir}: {result.TrainTokens:N0} train tokens, {result.ValTokens:N0} val tokens, vocab {m.VocabSize} ({m.TokenizerFamily}), {m.Dtype}, {m.Train.Count + m.Val.Count} shard(s)");
    }
}
