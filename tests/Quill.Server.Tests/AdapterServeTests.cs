// `quill serve --adapter DIR`: a PEFT LoRA adapter served beside its base, unmerged (ServedModel.Load with an
// adapter, InferenceModel.WithAdapter): the server's greedy reply is the terminal's (ChatSession on the same adapted
// model) and differs from the base's.
using Microsoft.Extensions.AI;
using Quill.Inference;
using Quill.Inference.Batching;
using Quill.Models;
using Quill.Server.Tests.Support;
using Quill.Tensors;

namespace Quill.Server.Tests;

public sealed class AdapterServeTests
{
    [Fact]
    public async Task An_adapter_is_served_beside_its_base_and_answers_as_the_terminal_does()
    {
        string dir = Directory.CreateTempSubdirectory("quill-serve-adapter-").FullName;
        try
        {
            string run = Path.Combine(dir, "run"), adapter = Path.Combine(dir, "adapter");
            TinyModels.SaveCheckpoint(run);
            using (var loaded = ModelLoader.Load(run))
            {
                var lora = LanguageModel.FromWeights(loaded.Weights).AddLora(new LoraConfig { Rank = 4, TargetModules = [LoraConfig.AllLinear] });
                var rng = new Rng(9);
                foreach (var m in lora.Modules) rng.FillNormal(m.B.Span, 0.5);
                lora.Save(adapter);
            }
            var options = new SchedulerOptions(16, 64);
            using var served = ServedModel.Load(run, null, options, 0, mmap: true, TimeSpan.FromSeconds(1), adapter);
            using var plainServed = ServedModel.Load(run, null, options, 0, mmap: true, TimeSpan.FromSeconds(1));
            using var adapted = ModelLoader.Load(run).WithAdapter(adapter);

            var sampling = new GenerationOptions { MaxTokens = 24, Sampling = new SamplingOptions { Temperature = 0 } };
            var session = new ChatSession(new Generator(new InferenceEngine(adapted)));
            var text = new System.Text.StringBuilder();
            await foreach (var t in session.SendAsync("Name a color.", sampling)) text.Append(t.Text);

            var ask = new List<ChatMessage> { new(ChatRole.User, "Name a color.") };
            var chat = new ChatOptions { Temperature = 0, MaxOutputTokens = 24 };
            using var client = new QuillChatClient(served);
            using var plainClient = new QuillChatClient(plainServed);
            var reply = await client.GetResponseAsync(ask, chat);
            var plainReply = await plainClient.GetResponseAsync(ask, chat);
            Assert.Equal(text.ToString(), reply.Text);
            Assert.NotEqual(plainReply.Text, reply.Text);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
