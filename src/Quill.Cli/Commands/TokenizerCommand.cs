// `quill tokenizer train|encode|decode|inspect`: thin wrappers over Quill.Tokenization (BpeTrainer,
// TokenizerLoader, TokenizerExport, TokenizerInfo). Text goes in and out as raw UTF-8 bytes.
using System.CommandLine;
using System.Globalization;
using System.Text;
using Quill.Tokenization;

namespace Quill.Cli.Commands;

internal static class TokenizerCommand
{
    public static Command Create()
    {
        var cmd = new Command("tokenizer", "Train, inspect and run tokenizers.");
        cmd.Add(Train());
        cmd.Add(Encode());
        cmd.Add(Decode());
        cmd.Add(Inspect());
        return cmd;
    }

    private static Command Train()
    {
        var input = new Option<string[]>("--input") { Description = "Training text files (UTF-8).", Required = true, AllowMultipleArgumentsPerToken = true };
        var vocab = new Option<int>("--vocab-size") { Description = "Vocabulary size: 256 bytes + merges + special tokens.", Required = true };
        var pattern = new Option<string>("--pattern") { Description = "Pre-tokenizer: gpt2, cl100k, o200k, llama3 or a regex.", DefaultValueFactory = _ => "gpt2" };
        var special = new Option<string[]>("--special") { Description = "Special tokens (appended to the vocabulary).", AllowMultipleArgumentsPerToken = true };
        var minFreq = new Option<int>("--min-frequency") { Description = "Never merge a pair seen fewer times.", DefaultValueFactory = _ => 1 };
        var threads = new Option<int>("--threads") { Description = "Threads for counting.", DefaultValueFactory = _ => Environment.ProcessorCount };
        var output = new Option<string>("--out") { Description = "Output file (*.tiktoken, tokenizer.json, else Quill JSON).", Required = true };
        var format = new Option<string?>("--format") { Description = "quill, tiktoken or hf (default: from the --out name)." };
        var cmd = new Command("train", "Train a byte-level BPE tokenizer.") { input, vocab, pattern, special, minFreq, threads, output, format };
        cmd.SetAction(r =>
        {
            var options = new BpeTrainerOptions
            {
                VocabSize = r.GetValue(vocab),
                Pattern = r.GetValue(pattern)!,
                SpecialTokens = r.GetValue(special) ?? [],
                MinFrequency = r.GetValue(minFreq),
                Threads = r.GetValue(threads),
            };
            string outPath = r.GetValue(output)!;
            var fmt = r.GetValue(format) is string f ? TokenizerExport.ParseFormat(f) : TokenizerExport.GuessFormat(outPath);
            var sw = System.Diagnostics.Stopwatch.StartNew();
            var progress = new Progress<string>(m => Console.Error.WriteLine(m));
            var tok = BpeTrainer.TrainFiles(r.GetValue(input)!, options, progress);
            TokenizerExport.Save(tok, outPath, fmt);
            Console.WriteLine($"trained {tok.VocabSize} tokens ({tok.Merges.Count} merges) in {sw.Elapsed.TotalSeconds:F1} s -> {outPath}");
        });
        return cmd;
    }

    private static Command Encode()
    {
        var tokenizer = new Option<string>("--tokenizer") { Description = "Tokenizer file.", Required = true };
        var file = new Option<string?>("--file") { Description = "Input text file (default: stdin)." };
        var bos = new Option<bool>("--bos") { Description = "Prepend the BOS token." };
        var allow = new Option<bool>("--allow-special") { Description = "Turn special-token text into special tokens." };
        var cmd = new Command("encode", "Print the token ids of a text on one line.") { tokenizer, file, bos, allow };
        cmd.SetAction(r =>
        {
            var tok = TokenizerLoader.Load(r.GetValue(tokenizer)!);
            string? path = r.GetValue(file);
            byte[] bytes = path != null ? File.ReadAllBytes(path) : ReadAllStdin();
            string text = TextFromUtf8(bytes, path ?? "stdin");
            var ids = new List<int>();
            if (r.GetValue(bos))
            {
                if (tok.BosId < 0) throw new InvalidConfigException("--bos: this tokenizer has no BOS token.");
                ids.Add(tok.BosId);
            }
            ids.AddRange(tok.Encode(text, r.GetValue(allow) ? SpecialTokenSet.All : null));
            Console.Out.WriteLine(string.Join(' ', ids));
        });
        return cmd;
    }

    private static Command Decode()
    {
        var tokenizer = new Option<string>("--tokenizer") { Description = "Tokenizer file.", Required = true };
        var cmd = new Command("decode", "Read token ids on stdin, write the text to stdout.") { tokenizer };
        cmd.SetAction(r =>
        {
            var tok = TokenizerLoader.Load(r.GetValue(tokenizer)!);
            string input = Encoding.UTF8.GetString(ReadAllStdin());
            var ids = new List<int>();
            foreach (string part in input.Split((char[])[' ', '\t', '\r', '\n', ','], StringSplitOptions.RemoveEmptyEntries))
            {
                if (!int.TryParse(part, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out int id))
                    throw new QuillException($"stdin: \"{part}\" is not a token id; pass integers separated by spaces.");
                ids.Add(id);
            }
            byte[] bytes = tok.DecodeBytes(ids.ToArray());
            using var stdout = Console.OpenStandardOutput();
            stdout.Write(bytes);
        });
        return cmd;
    }

    private static Command Inspect()
    {
        var path = new Argument<string>("path") { Description = "Tokenizer file (any supported format)." };
        var cmd = new Command("inspect", "Show a tokenizer's family, vocabulary size, special tokens and pattern.") { path };
        cmd.SetAction(r =>
        {
            string p = r.GetValue(path)!;
            var tok = TokenizerLoader.Load(p);
            Console.WriteLine($"file: {p}");
            foreach (string line in TokenizerInfo.Describe(tok)) Console.WriteLine(line);
        });
        return cmd;
    }

    internal static byte[] ReadAllStdin()
    {
        using var stdin = Console.OpenStandardInput();
        using var ms = new MemoryStream();
        stdin.CopyTo(ms);
        return ms.ToArray();
    }

    internal static string TextFromUtf8(byte[] bytes, string source)
    {
        int start = bytes.Length >= 3 && bytes[0] == 0xEF && bytes[1] == 0xBB && bytes[2] == 0xBF ? 3 : 0;
        if (System.Text.Unicode.Utf8.IsValid(bytes.AsSpan(start))) return Encoding.UTF8.GetString(bytes, start, bytes.Length - start);
        System.Text.Unicode.Utf8.ToUtf16(bytes.AsSpan(start), new char[bytes.Length], out int read, out _, replaceInvalidSequences: false);
        throw new InvalidTokenInputException($"{source}: invalid UTF-8 at byte offset {start + read}; convert the input to UTF-8.");
    }
}
