// `quill bench tokenize`: encode throughput of a tokenizer on a text file, one JSON line per figure; with
// --compare, the peers measured in the same run (js-tiktoken for tiktoken/GPT-2 files, python sentencepiece for
// .model files) and, with --train-vocab, BPE training time against sentencepiece's trainer.
using System.CommandLine;
using Quill.Benchmarks;
using Quill.Tokenization;

namespace Quill.Cli.Commands;

/// <summary>The `tokenize` subcommand of `quill bench`.</summary>
public static class BenchTokenizeCommand
{
    public static Command Create()
    {
        var tokenizer = new Option<string>("--tokenizer") { Description = "Tokenizer file.", Required = true };
        var file = new Option<string>("--file") { Description = "UTF-8 text to encode.", Required = true };
        var threads = new Option<int>("--threads") { Description = "Threads for the multi-threaded figure (default: all).", DefaultValueFactory = _ => Environment.ProcessorCount };
        var seconds = new Option<double>("--seconds") { Description = "Time budget per figure.", DefaultValueFactory = _ => 2.0 };
        var compare = new Option<bool>("--compare") { Description = "Also measure the peer (js-tiktoken or python sentencepiece) and print ratios." };
        var peers = new Option<string>("--peers") { Description = "Folder with the peer scripts.", DefaultValueFactory = _ => Path.Combine("bench", "peers") };
        var trainVocab = new Option<int[]>("--train-vocab") { Description = "Also time BPE training on --file for these vocabulary sizes (against sentencepiece with --compare).", AllowMultipleArgumentsPerToken = true };
        var cmd = new Command("tokenize", "Measure tokenizer encode throughput (MB/s) and training time.") { tokenizer, file, threads, seconds, compare, peers, trainVocab };
        cmd.SetAction(r =>
        {
            string tokPath = r.GetValue(tokenizer)!;
            string path = r.GetValue(file)!;
            var tok = TokenizerLoader.Load(tokPath);
            string text = TokenizerCommand.TextFromUtf8(File.ReadAllBytes(path), path);
            double budget = r.GetValue(seconds);
            int n = r.GetValue(threads);
            string peerDir = r.GetValue(peers)!;
            bool cmp = r.GetValue(compare);
            string? jsEncoding = JsEncodingFor(tokPath, tok);
            foreach (int t in n > 1 ? new[] { 1, n } : new[] { 1 })
            {
                var res = TokenizeBenchmark.MeasureEncode(tok, text, t, budget);
                Console.WriteLine(TokenizeBenchmark.ToJson(res));
                if (!cmp) continue;
                if (jsEncoding != null)
                {
                    double peer = TokenizePeers.JsTiktoken(peerDir, jsEncoding, path, t, budget);
                    Console.WriteLine(TokenizeBenchmark.CompareJson($"encode {jsEncoding} {t} thread(s) vs js-tiktoken", res.MegabytesPerSecond, peer, "MB/s"));
                }
                else if (tok is SentencePieceTokenizer && t == 1 && tokPath.EndsWith(".model", StringComparison.OrdinalIgnoreCase))
                {
                    double peer = TokenizePeers.SentencePieceEncode(peerDir, tokPath, path, budget);
                    Console.WriteLine(TokenizeBenchmark.CompareJson($"encode {Path.GetFileName(tokPath)} 1 thread vs sentencepiece", res.MegabytesPerSecond, peer, "MB/s"));
                }
            }
            foreach (int v in r.GetValue(trainVocab) ?? [])
            {
                double quill = TokenizeBenchmark.MeasureTraining([path], v, n, repeats: 2);
                if (!cmp)
                {
                    Console.WriteLine(FormattableString.Invariant($"{{\"bench\": \"tokenizer train\", \"vocab\": {v}, \"threads\": {n}, \"seconds\": {quill:F2}}}"));
                    continue;
                }
                double peer = TokenizePeers.SentencePieceTrain(peerDir, path, v, n);
                Console.WriteLine(TokenizeBenchmark.CompareJson($"train bpe vocab {v} vs sentencepiece", quill, peer, "s"));
            }
        });
        return cmd;
    }

    private static string? JsEncodingFor(string path, ITokenizer tok)
    {
        string name = Path.GetFileName(path).ToLowerInvariant();
        if (tok is not BpeTokenizer) return null;
        if (name.StartsWith("cl100k", StringComparison.Ordinal)) return "cl100k_base";
        if (name.StartsWith("o200k", StringComparison.Ordinal)) return "o200k_base";
        if (name.StartsWith("p50k", StringComparison.Ordinal)) return "p50k_base";
        if (name.StartsWith("r50k", StringComparison.Ordinal) || name == "encoder.json" || name == "gpt2_tokenizer.bin") return tok.VocabSize == 50257 ? "gpt2" : null;
        return null;
    }
}
