// `quill feedback export`: the web chat's thumbs (the JSONL `quill serve --feedback FILE` writes) as preference pairs
// for `quill finetune --method dpo`. Thin: Quill.Data.Sft.FeedbackPairs pairs and writes; this parses and prints.
using System.CommandLine;
using Quill.Data.Sft;

namespace Quill.Cli.Commands;

internal static class FeedbackCommand
{
    public static Command Create()
    {
        var cmd = new Command("feedback", "Work with the thumbs up / down the web chat of `quill serve --feedback FILE` records.");
        cmd.Add(Export());
        return cmd;
    }

    private static Command Export()
    {
        var input = new Option<string[]>("--in") { Description = "Feedback JSONL file(s) from quill serve --feedback (the rotated FILE.1 too, oldest first)", Required = true, AllowMultipleArgumentsPerToken = true };
        var output = new Option<string>("--out") { Description = "Preference pairs JSONL (prompt, chosen, rejected) for quill finetune --method dpo", Required = true };
        var unpaired = new Option<string?>("--unpaired") { Description = "Also write the ratings that found no opposite rating (prompt, completion, label) to this JSONL file" };
        var layout = new Option<string>("--layout") { Description = "messages (prompt as chat messages, for models with a chat template) or plain (the plain transcript a Quill checkpoint is served with)", DefaultValueFactory = _ => "messages" };
        var cmd = new Command("export", "Pair thumbs-up and thumbs-down replies to the same prompt of a conversation (answers and regenerations) into preference pairs.")
        {
            input, output, unpaired, layout,
        };
        cmd.SetAction(r =>
        {
            var l = r.GetValue(layout) switch
            {
                "messages" => FeedbackLayout.Messages,
                "plain" => FeedbackLayout.Plain,
                var other => throw new InvalidConfigException($"--layout {other} is not a layout; use messages or plain."),
            };
            string outPath = r.GetValue(output)!;
            string? extra = r.GetValue(unpaired);
            var report = FeedbackPairs.Export(r.GetValue(input)!, outPath, extra, l);
            Console.Error.WriteLine($"feedback: {report.Describe()}");
            Console.WriteLine($"pairs: {outPath} ({report.Pairs})");
            if (extra != null) Console.WriteLine($"unpaired: {extra} ({report.Unpaired})");
            if (report.Pairs == 0) Console.Error.WriteLine("warning: no pairs yet; rate a reply up and another reply to the same prompt (regenerate) down.");
        });
        return cmd;
    }
}
