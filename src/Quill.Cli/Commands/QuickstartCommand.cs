// `quill quickstart`: the README's main job. Generates Quill's built-in story corpus (or takes --data), prepares
// it with a character tokenizer, trains the small "tiny" preset for a few minutes with a progress bar, prints
// samples and says where the checkpoint is.
using System.CommandLine;
using Quill.Data;
using Quill.Inference;
using Quill.Kernels;
using Quill.Training;

namespace Quill.Cli.Commands;

internal static class QuickstartCommand
{
    public static Command Create()
    {
        var data = new Option<string?>("--data") { Description = "Your own UTF-8 text file (default: Quill's built-in story corpus)" };
        var outDir = new Option<string>("--out") { Description = "Run folder", DefaultValueFactory = _ => Path.Combine("runs", "quickstart") };
        var steps = new Option<int>("--max-steps") { Description = "Training steps", DefaultValueFactory = _ => Presets.Get("tiny").Train.MaxSteps };
        var threads = new Option<int?>("--threads") { Description = "Kernel threads (default: all cores)" };
        var cmd = new Command("quickstart", "Prepare data, train a small model for a few minutes, and sample from it.") { data, outDir, steps, threads };
        cmd.SetAction(r =>
        {
            if (r.GetValue(threads) is int n) KernelThreads.Count = n;
            string run = r.GetValue(outDir)!;
            if (Directory.Exists(run) && Checkpoint.Locate(run) != null)
                throw new QuillException($"{run} already holds a trained model; remove it or pass --out with a new folder.");
            Directory.CreateDirectory(run);
            string? input = r.GetValue(data);
            if (input == null)
            {
                input = Path.Combine(run, "stories.txt");
                AtomicFile.WriteAllText(input, StoryCorpus.Generate(2_000_000));
                Console.Error.WriteLine($"wrote Quill's built-in story corpus to {input}");
            }
            var prepared = DatasetPreparer.Prepare(new PrepareOptions([input], "char", Path.Combine(run, "data")));
            PrepareCommand.Print(prepared);
            using var cts = Rendering.CtrlC();
            var result = TrainCommand.Train(Presets.Get("tiny"), new TrainOptions(prepared.OutDir, run, r.GetValue(steps)), cts.Token);
            Console.WriteLine();
            foreach (string prompt in new[] { "Once upon a time", "One day, " })
            {
                Console.WriteLine($"--- sample: \"{prompt}\"");
                Console.WriteLine(prompt + SampleCommand.Sample(run, prompt, new SampleOptions(MaxTokens: 300, Temperature: 0.6f, TopK: 40, Seed: 7)));
            }
            Console.WriteLine();
            Console.WriteLine($"checkpoint: {result.CheckpointDir}");
            Console.WriteLine($"try: ./quill sample --checkpoint {run} --prompt \"Once upon a time\"");
        });
        return cmd;
    }
}
