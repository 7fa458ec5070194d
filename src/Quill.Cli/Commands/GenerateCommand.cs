// `quill generate`: continue a prompt with any model Quill runs. stdout gets exactly the generated text (streamed,
// prompt not included); stderr gets the prefill and decode throughput. --temperature 0 is greedy. --adapter merges a
// PEFT LoRA adapter folder into an f32 copy of the model before running it (then --dtype converts the merged copy).
using System.CommandLine;
using System.Globalization;
using Quill.Inference;
using Quill.Kernels;

namespace Quill.Cli.Commands;

internal static class GenerateCommand
{
    public static Command Create()
    {
        var o = new GenerateOptions();
        var prompt = new Option<string>("--prompt") { Description = "Text to continue", DefaultValueFactory = _ => "" };
        var cmd = new Command("generate", "Generate text from a prompt (GGUF, llama2.c .bin, HF folder or Quill checkpoint).") { prompt };
        o.AddTo(cmd);
        cmd.SetAction(async (r, cancel) =>
        {
            var options = o.Generation(r);
            using var model = o.LoadModel(r);
            var gen = new Generator(new InferenceEngine(model, r.GetValue(o.Context)));
            var stdout = Console.Out;
            await foreach (var t in gen.GenerateAsync(r.GetValue(prompt)!, options, cancel))
            {
                stdout.Write(t.Text);
                stdout.Flush();
            }
            GenerateOptions.PrintStats(gen.LastStats);
        });
        return cmd;
    }
}

/// <summary>The options generate and chat share, and how they become library calls.</summary>
internal sealed class GenerateOptions
{
    public Option<string> Model { get; } = new("--model") { Description = "Model: .gguf, llama2.c .bin, HF folder, Quill run/checkpoint folder, or hf.co/ORG/REPO[:QUANT] (see quill pull)", Required = true };
    public Option<string?> Tokenizer { get; } = new("--tokenizer") { Description = "Tokenizer file (default: the one in or beside the model)" };
    public Option<int> MaxTokens { get; } = new("--max-tokens") { Description = "Most tokens to generate", DefaultValueFactory = _ => 256 };
    public Option<float> Temperature { get; } = new("--temperature") { Description = "0 = greedy", DefaultValueFactory = _ => 0.8f };
    public Option<float> TopP { get; } = new("--top-p") { Description = "Nucleus sampling threshold (1 = off)", DefaultValueFactory = _ => 0.95f };
    public Option<int> TopK { get; } = new("--top-k") { Description = "Sample among the K most likely (0 = off)", DefaultValueFactory = _ => 0 };
    public Option<float> MinP { get; } = new("--min-p") { Description = "Drop tokens below this fraction of the top probability (0 = off)", DefaultValueFactory = _ => 0f };
    public Option<float> RepetitionPenalty { get; } = new("--repetition-penalty") { Description = "Penalty on recently seen tokens (1 = off)", DefaultValueFactory = _ => 1f };
    public Option<ulong?> Seed { get; } = new("--seed") { Description = "Random seed (default: from the clock)" };
    public Option<string[]> Stop { get; } = new("--stop") { Description = "Stop when this text appears (repeatable)", AllowMultipleArgumentsPerToken = false };
    public Option<int> Context { get; } = new("--context") { Description = "KV cache positions (default: the model's context, at most 4096)", DefaultValueFactory = _ => 0 };
    public Option<string?> Dtype { get; } = new("--dtype") { Description = "Convert weights on load: f32, f16, bf16, q8_0, q4_0, ..." };
    public Option<bool> Pull { get; } = ModelLocator.PullOption();
    public Option<bool> NoMmap { get; } = new("--no-mmap") { Description = "Read the weights into memory instead of mapping the file" };
    public Option<int> Threads { get; } = new("--threads") { Description = "Threads (default: all cores)", DefaultValueFactory = _ => 0 };
    public Option<string?> Adapter { get; } = new("--adapter") { Description = "PEFT LoRA adapter folder (adapter_config.json, adapter_model.safetensors), run beside the model unmerged" };

    public void AddTo(Command cmd)
    {
        foreach (Option opt in new Option[] { Model, Tokenizer, MaxTokens, Temperature, TopP, TopK, MinP, RepetitionPenalty, Seed, Stop, Context, Dtype, Threads, Adapter, NoMmap, Pull })
            cmd.Add(opt);
    }

    public InferenceModel LoadModel(ParseResult r) =>
        Load(ModelLocator.Resolve(r.GetValue(Model)!, r.GetValue(Pull)), r.GetValue(Tokenizer), r.GetValue(Dtype), r.GetValue(Adapter), r.GetValue(Threads), !r.GetValue(NoMmap));

    /// <summary>Sets the thread count (0: all cores), loads the model (mapped, or read into memory), converts it to dtype and runs the adapter beside it, unmerged.</summary>
    public static InferenceModel Load(string path, string? tokenizer, string? dtype, string? adapter, int threads, bool mmap = true)
    {
        if (threads < 0) throw new InvalidConfigException($"--threads must be 0 (all cores) or more (got {threads}).");
        if (threads > 0) KernelThreads.Count = threads;
        if (adapter == null) return ModelLoader.Load(path, tokenizer, dtype, mmap);
        // the base as stored (or converted by --dtype), the adapter beside it, unmerged: a quantized base stays quantized
        var model = ModelLoader.Load(path, tokenizer, dtype, mmap);
        try
        {
            return model.WithAdapter(adapter);
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    public GenerationOptions Generation(ParseResult r)
    {
        var g = Build(r);
        if (g.MaxTokens < 0) throw new InvalidConfigException($"--max-tokens must not be negative (got {g.MaxTokens}).");
        g.Sampling.Validate();
        return g;
    }

    private GenerationOptions Build(ParseResult r) => new()
    {
        MaxTokens = r.GetValue(MaxTokens),
        StopStrings = r.GetValue(Stop) ?? [],
        Sampling = new SamplingOptions
        {
            Temperature = r.GetValue(Temperature),
            TopP = r.GetValue(TopP),
            TopK = r.GetValue(TopK),
            MinP = r.GetValue(MinP),
            RepetitionPenalty = r.GetValue(RepetitionPenalty),
            Seed = r.GetValue(Seed),
        },
    };

    public static void PrintStats(GenerationStats? s)
    {
        if (s == null) return;
        Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"\nprefill: {s.PromptTokens} tokens, {s.PrefillTokensPerSecond:F1} tokens/s; decode: {s.GeneratedTokens} tokens, {s.DecodeTokensPerSecond:F1} tokens/s ({s.FinishReason})"));
    }
}
