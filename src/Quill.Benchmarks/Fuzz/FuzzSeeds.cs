// The valid files the fuzz harness mutates, one folder per target: made here from Quill's own writers (a GPT-2 and
// a Llama checkpoint with their tokenizers, a Hugging Face folder of the Llama one, a small byte-level BPE as Quill
// JSON and as HF tokenizer.json, a tiktoken file cut from r50k) and taken from the shared reference data when it is
// there (a GGUF model with its SentencePiece vocabulary, llama2.c's stories260K with its tokenizer, a SentencePiece
// .model). Models are tiny so that a case takes milliseconds.
using System.Text;
using Quill.Models;
using Quill.Tokenization;
using Quill.Training;

namespace Quill.Benchmarks.Fuzz;

/// <summary>Builds the fuzz targets.</summary>
public static class FuzzSeeds
{
    /// <summary>Writes the seed folders under <paramref name="dir"/> and returns every target whose seed exists.</summary>
    /// <param name="dir">An empty work folder.</param>
    /// <param name="sharedData">The shared reference-data folder, or null to use only the files made here.</param>
    public static List<FuzzTarget> Create(string dir, string? sharedData)
    {
        ArgumentNullException.ThrowIfNull(dir);
        var targets = new List<FuzzTarget>();
        string corpus = string.Concat(Enumerable.Repeat("Once upon a time there was a little fox named Ben. He found 3 shiny shells by the sea, and the café was open! ", 40));

        // Quill checkpoints: GPT-2 over a char tokenizer, Llama over a byte-level BPE.
        var chars = new CharTokenizer(corpus.Distinct().Select(c => (int)c).Order());
        string gpt2 = Path.Combine(dir, "quill-gpt2");
        Checkpoint.SaveModel(gpt2, LanguageModel.Create(new ModelConfig { Arch = "gpt2", VocabSize = chars.VocabSize, NLayer = 1, NHead = 2, NEmbd = 16, BlockSize = 32 }, 1), chars);
        foreach (string f in new[] { "model.safetensors", "config.json", "tokenizer.json" })
            targets.Add(new($"quill-gpt2/{f}", gpt2, f, d => LoaderFuzzer.ExerciseModel(d)));

        var bpe = BpeTrainer.Train([corpus], new BpeTrainerOptions { VocabSize = 300 });
        string llama = Path.Combine(dir, "quill-llama");
        var llamaModel = LanguageModel.Create(new ModelConfig { Arch = "llama", VocabSize = bpe.VocabSize, NLayer = 1, NHead = 2, NKvHead = 1, NEmbd = 16, BlockSize = 32 }, 2);
        Checkpoint.SaveModel(llama, llamaModel, bpe);
        foreach (string f in new[] { "model.safetensors", "config.json", "tokenizer.json" })
            targets.Add(new($"quill-llama/{f}", llama, f, d => LoaderFuzzer.ExerciseModel(d)));

        // The same Llama weights as a Hugging Face folder (its safetensors names are HF's), with an HF tokenizer.json.
        string hf = Path.Combine(dir, "hf-llama");
        Directory.CreateDirectory(hf);
        File.Copy(Path.Combine(llama, "model.safetensors"), Path.Combine(hf, "model.safetensors"));
        var c = llamaModel.Config;
        File.WriteAllText(Path.Combine(hf, "config.json"), $$"""
            {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": {{c.NEmbd}}, "num_hidden_layers": {{c.NLayer}},
             "num_attention_heads": {{c.NHead}}, "num_key_value_heads": {{c.NKvHead}}, "intermediate_size": {{c.Hidden}},
             "vocab_size": {{c.VocabSize}}, "max_position_embeddings": {{c.BlockSize}}, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
             "tie_word_embeddings": {{(c.Tied ? "true" : "false")}}, "torch_dtype": "float32"}
            """);
        TokenizerExport.Save(bpe, Path.Combine(hf, "tokenizer.json"), TokenizerFormat.HuggingFace);
        foreach (string f in new[] { "model.safetensors", "config.json", "tokenizer.json" })
            targets.Add(new($"hf-llama/{f}", hf, f, d => LoaderFuzzer.ExerciseModel(d)));

        // tiktoken ranks: the first 3,000 of r50k when the shared data has it, else the BPE above as ranks.
        string tik = Path.Combine(dir, "tiktoken");
        Directory.CreateDirectory(tik);
        string? r50k = sharedData == null ? null : Path.Combine(sharedData, "tiktoken", "r50k_base.tiktoken");
        if (r50k != null && File.Exists(r50k)) File.WriteAllLines(Path.Combine(tik, "ranks.tiktoken"), File.ReadLines(r50k).Take(3000));
        else TokenizerExport.Save(bpe, Path.Combine(tik, "ranks.tiktoken"), TokenizerFormat.Tiktoken);
        targets.Add(new("tiktoken", tik, "ranks.tiktoken", d => LoaderFuzzer.ExerciseTokenizer(Path.Combine(d, "ranks.tiktoken"))));

        if (sharedData != null)
        {
            AddShared(targets, dir, sharedData, "gguf", "gguf-models/llama-2-tiny-random.gguf", "model.gguf", d => LoaderFuzzer.ExerciseModel(Path.Combine(d, "model.gguf")));
            string stories = Path.Combine(sharedData, "llama2c", "stories260K.bin"), tok512 = Path.Combine(sharedData, "llama2c", "tok512.bin");
            if (File.Exists(stories) && File.Exists(tok512))
            {
                string l2c = Path.Combine(dir, "llama2c");
                Directory.CreateDirectory(l2c);
                File.Copy(stories, Path.Combine(l2c, "model.bin"));
                File.Copy(tok512, Path.Combine(l2c, "tok512.bin"));
                targets.Add(new("llama2c/model.bin", l2c, "model.bin", d => LoaderFuzzer.ExerciseModel(Path.Combine(d, "model.bin"), Path.Combine(d, "tok512.bin"))));
                targets.Add(new("llama2c/tok512.bin", l2c, "tok512.bin", d => LoaderFuzzer.ExerciseModel(Path.Combine(d, "model.bin"), Path.Combine(d, "tok512.bin"))));
            }
            AddShared(targets, dir, sharedData, "sentencepiece", "sentencepiece/test_model.model", "tokenizer.model", d => LoaderFuzzer.ExerciseTokenizer(Path.Combine(d, "tokenizer.model")));
        }
        return targets;
    }

    private static void AddShared(List<FuzzTarget> targets, string dir, string sharedData, string name, string relative, string fileName, Action<string> exercise)
    {
        string source = Path.Combine(sharedData, relative);
        if (!File.Exists(source)) return;
        string folder = Path.Combine(dir, name);
        Directory.CreateDirectory(folder);
        File.Copy(source, Path.Combine(folder, fileName));
        targets.Add(new(name, folder, fileName, exercise));
    }

    /// <summary>Counts per target and outcome, as a Markdown table.</summary>
    public static string Table(IEnumerable<FuzzCase> cases)
    {
        var sb = new StringBuilder("| target | mutants | loaded | refused (one line) | crashed | hung | memory |\n|---|---:|---:|---:|---:|---:|---:|\n");
        foreach (var g in cases.GroupBy(x => x.Target))
        {
            int N(FuzzOutcome o) => g.Count(x => x.Outcome == o);
            sb.Append(System.Globalization.CultureInfo.InvariantCulture, $"| {g.Key} | {g.Count()} | {N(FuzzOutcome.Loaded)} | {N(FuzzOutcome.Refused)} | {N(FuzzOutcome.Crashed)} | {N(FuzzOutcome.Hung)} | {N(FuzzOutcome.MemoryBlowup)} |\n");
        }
        return sb.ToString();
    }
}
