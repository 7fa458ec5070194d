// `quill serve --model PATH` on a Quill run folder: the model loads through the engine's ModelLoader with the
// checkpoint's tokenizer, is named after the folder, and answers; a missing path is a one-line QuillException.
using Quill.Inference.Batching;
using Quill.Server.Tests.Support;

namespace Quill.Server.Tests;

public sealed class ModelLoadingTests : IDisposable
{
    private readonly string dir = Directory.CreateTempSubdirectory("quill-serve-load-").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    [Fact]
    public async Task Run_folder_is_served_under_its_name()
    {
        string run = Path.Combine(dir, "story-run");
        TinyModels.SaveCheckpoint(run);
        var model = ServedModel.Load(run, null, new SchedulerOptions(4, 4));
        Assert.Equal("story-run", model.Name);
        Assert.Equal("plain", model.Chat.Name);
        await using var server = await TestServer.StartAsync(null, model);
        var reply = (await server.Client.GetChatClient("story-run").CompleteChatAsync([new OpenAI.Chat.UserChatMessage("hello")],
            new OpenAI.Chat.ChatCompletionOptions { MaxOutputTokenCount = 5, Temperature = 0 })).Value;
        Assert.Equal(5, reply.Usage.OutputTokenCount);
    }

    [Fact]
    public void Names_drop_the_extension_and_a_checkpoint_folder()
    {
        Assert.Equal("stories15M", ServedModel.NameOf("/models/stories15M.bin"));
        Assert.Equal("story", ServedModel.NameOf("/runs/story/checkpoint/"));
        Assert.Equal("story", ServedModel.NameOf("/runs/story"));
        // the server spells out the training layer's folder name instead of depending on it
        Assert.Equal(Quill.Training.Checkpoint.FolderName, ServedModel.CheckpointFolderName);
    }

    [Fact]
    public void Missing_model_is_a_quill_exception()
    {
        var ex = Assert.ThrowsAny<QuillException>(() => ServedModel.Load(Path.Combine(dir, "nope.gguf"), null, new SchedulerOptions()));
        Assert.Contains("nope.gguf", ex.Message, StringComparison.Ordinal);
    }
}
