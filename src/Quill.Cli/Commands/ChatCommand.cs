// `quill chat`: an interactive conversation in the terminal. Applies the model's chat format, streams each reply,
// keeps the conversation (and its KV cache) between turns. Commands: /reset, /system TEXT, /quit.
using System.CommandLine;
using Quill.Inference;

namespace Quill.Cli.Commands;

internal static class ChatCommand
{
    public static Command Create()
    {
        var o = new GenerateOptions();
        var system = new Option<string?>("--system") { Description = "System prompt" };
        var cmd = new Command("chat", "Chat with a model in the terminal (/reset, /system TEXT, /quit).") { system };
        o.AddTo(cmd);
        cmd.SetAction(async (r, cancel) =>
        {
            using var model = o.LoadModel(r);
            var gen = new Generator(new InferenceEngine(model, r.GetValue(o.Context)));
            var chat = new ChatSession(gen) { SystemPrompt = r.GetValue(system) };
            var options = o.Generation(r);
            Console.Error.WriteLine($"{model.Spec.Arch} model, chat format {chat.Format}. Type /quit to leave, /reset to start over, /system TEXT to set the system prompt.");
            while (!cancel.IsCancellationRequested)
            {
                Console.Error.Write("> ");
                string? line = Console.ReadLine();
                if (line == null || line.Trim() == "/quit") break;
                line = line.Trim();
                if (line.Length == 0) continue;
                if (line == "/reset")
                {
                    chat.Reset();
                    Console.Error.WriteLine("(conversation cleared)");
                    continue;
                }
                if (line.StartsWith("/system", StringComparison.Ordinal))
                {
                    chat.SystemPrompt = line["/system".Length..].Trim();
                    chat.Reset();
                    Console.Error.WriteLine("(system prompt set; conversation cleared)");
                    continue;
                }
                await foreach (var t in chat.SendAsync(line, options, cancel))
                {
                    Console.Out.Write(t.Text);
                    Console.Out.Flush();
                }
                Console.Out.WriteLine();
                GenerateOptions.PrintStats(gen.LastStats);
            }
        });
        return cmd;
    }
}
