// `quill serve`: an OpenAI-compatible API (/v1), an Ollama-compatible one (/api) and a web chat for one or more
// models. The server warms up on its own requests (QuillServer.WarmUpAsync; --no-warmup skips it), then the URL
// is printed and it serves until Ctrl+C. Every model is listed in /v1/models under its file name without
// extension. Access: --api-key (or $QUILL_API_KEY) guards /v1, /api and /metrics (--metrics-public opens
// /metrics), --allowed-host adds Host names a loopback server answers to, --cors-origin lets a browser site call
// the API; binding beyond loopback without a key prints a warning. A model whose file (or run folder) is replaced
// by a rename is reloaded while serving (ServedModel's watch); --no-mmap reads the weights into memory.
using System.CommandLine;
using Quill.Server;
using Quill.Inference.Batching;

namespace Quill.Cli.Commands;

internal static class ServeCommand
{
    public static Command Create()
    {
        var models = new Option<string[]>("--model") { Description = "Model file or folder (repeat for several)", Required = true, Arity = ArgumentArity.OneOrMore };
        var tokenizer = new Option<string?>("--tokenizer") { Description = "Tokenizer file, when the model carries none" };
        var host = new Option<string>("--host") { Description = "Address to bind (loopback by default; 0.0.0.0 for every interface)", DefaultValueFactory = _ => "127.0.0.1" };
        var port = new Option<int>("--port") { Description = "TCP port (0 = any free port)", DefaultValueFactory = _ => 8080 };
        var apiKey = new Option<string?>("--api-key") { Description = "Require 'Authorization: Bearer KEY' on /v1 and /api routes and /metrics (default: $QUILL_API_KEY, so a container need not put the key on its command line)" };
        var metricsPublic = new Option<bool>("--metrics-public") { Description = "Serve /metrics without the API key" };
        var allowedHost = new Option<string[]>("--allowed-host") { Description = "Host name the server answers to besides localhost and its address (repeatable)", AllowMultipleArgumentsPerToken = false };
        var corsOrigin = new Option<string[]>("--cors-origin") { Description = "Browser origin allowed to call the API cross-site, e.g. https://app.example.com, or * (repeatable; CORS is off without it)", AllowMultipleArgumentsPerToken = false };
        var maxBatch = new Option<int>("--max-batch") { Description = "Sequences decoded together per model", DefaultValueFactory = _ => 16 };
        var maxQueue = new Option<int>("--max-queue") { Description = "Requests allowed to wait per model (429 beyond)", DefaultValueFactory = _ => 64 };
        var feedback = new Option<string?>("--feedback") { Description = "JSONL file for thumbs up / down from the web chat", DefaultValueFactory = _ => "feedback.jsonl" };
        var context = new Option<int>("--context") { Description = "Positions per sequence (0 = the model's, at most 4096)" };
        var pull = new Option<bool>("--pull") { Description = "Download hf.co/ORG/REPO[:QUANT] models that are not in the cache yet" };
        var noMmap = new Option<bool>("--no-mmap") { Description = "Read the weights into memory instead of mapping the file (an in-place overwrite of the file then cannot crash the server)" };
        var maxBody = new Option<long>("--max-body") { Description = "Largest request body in bytes (413 beyond)", DefaultValueFactory = _ => 4L << 20 };
        var adapter = new Option<string?>("--adapter") { Description = "PEFT LoRA adapter folder run beside the model, unmerged (one model only)" };
        var noWarmUp = new Option<bool>("--no-warmup") { Description = "Start serving at once, without first running each model until its code is compiled (the first requests are then slower)" };
        var cmd = new Command("serve", "Serve models over an OpenAI-compatible (/v1) and an Ollama-compatible (/api) API with a web chat.")
        {
            models, tokenizer, host, port, apiKey, metricsPublic, allowedHost, corsOrigin, maxBatch, maxQueue, feedback, context, maxBody, noMmap, noWarmUp, pull, adapter,
        };
        cmd.SetAction(r =>
        {
            var sched = new SchedulerOptions(r.GetValue(maxBatch), r.GetValue(maxQueue));
            var options = new ServerOptions
            {
                Host = r.GetValue(host)!, Port = r.GetValue(port), ApiKey = r.GetValue(apiKey) ?? NonEmpty(Environment.GetEnvironmentVariable("QUILL_API_KEY")), MetricsPublic = r.GetValue(metricsPublic),
                AllowedHosts = r.GetValue(allowedHost) ?? [], CorsOrigins = r.GetValue(corsOrigin) ?? [],
                FeedbackPath = r.GetValue(feedback), MaxBodyBytes = r.GetValue(maxBody),
            };
            options.Validate();
            if (r.GetValue(adapter) != null && r.GetValue(models)!.Length > 1)
                throw new InvalidConfigException("--adapter goes with one model; serve the others apart, or merge the adapter (quill finetune merge) and serve the merged folder.");
            var loaded = new List<ServedModel>();
            try
            {
                foreach (string path in r.GetValue(models)!)
                {
                    var m = ServedModel.Load(ModelLocator.Resolve(path, r.GetValue(pull)), r.GetValue(tokenizer), sched, r.GetValue(context), mmap: !r.GetValue(noMmap), TimeSpan.FromSeconds(1), r.GetValue(adapter));
                    loaded.Add(m);
                    Console.Error.WriteLine($"loaded {m.Name}: {m.Backend.Description}, chat format {m.Chat.Name}");
                }
            }
            catch
            {
                foreach (var m in loaded) m.Dispose();
                throw;
            }
            Run(options, loaded, !r.GetValue(noWarmUp)).GetAwaiter().GetResult();
        });
        return cmd;
    }

    private static string? NonEmpty(string? s) => string.IsNullOrEmpty(s) ? null : s;

    private static async Task Run(ServerOptions options, List<ServedModel> models, bool warmUp)
    {
        await using var server = await QuillServer.StartAsync(options, models, ownsModels: true);
        if (warmUp)
        {
            var w = await server.WarmUpAsync(TimeSpan.FromSeconds(10));
            Console.Error.WriteLine($"warmed up on {w.Requests} requests of its own ({w.Tokens} tokens) in {w.Elapsed.TotalSeconds:F1} s, so the first request runs at full speed (--no-warmup skips this)");
        }
        foreach (string w in server.Warnings) Console.Error.WriteLine("warning: " + w);
        Console.WriteLine($"Quill is serving {string.Join(", ", models.Select(m => m.Name))} at {server.Address}");
        Console.WriteLine($"  web chat: {server.Address}   API: {server.Address}v1 (OpenAI), {server.Address}api (Ollama)   (Ctrl+C to stop)");
        await server.WaitForShutdownAsync();
    }
}
