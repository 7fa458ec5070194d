// A served model whose files are replaced by rename while requests run: no request fails, and once the server has
// noticed, requests get the new model's replies. (An in-place overwrite of a mapped file is not survivable, as with
// llama.cpp; --no-mmap reads the weights into memory: see NoMmapTests in Quill.Tests.)
using System.Collections.Concurrent;
using OpenAI.Chat;
using Quill.Inference.Batching;
using Quill.Server.Tests.Support;

namespace Quill.Server.Tests;

public sealed class ReloadTests : IDisposable
{
    private readonly string dir = Directory.CreateTempSubdirectory("quill-reload-").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    private static async Task<string> Greedy(TestServer server, string model) =>
        (await server.Client.GetChatClient(model).CompleteChatAsync([new UserChatMessage("Once upon")],
            new ChatCompletionOptions { MaxOutputTokenCount = 12, Temperature = 0 })).Value.Content[0].Text;

    [Fact]
    public async Task Model_replaced_by_rename_mid_traffic_is_served_without_an_error()
    {
        string run = Path.Combine(dir, "story"), next = Path.Combine(dir, "next");
        TinyModels.SaveCheckpoint(run, seed: 7);
        TinyModels.SaveCheckpoint(next, seed: 99);

        string expectedNew;
        using (var other = ServedModel.Load(next, null, new SchedulerOptions(4, 64)))
        {
            await using var s = await TestServer.StartAsync(null, other);
            expectedNew = await Greedy(s, "next");
        }

        var model = ServedModel.Load(run, null, new SchedulerOptions(4, 64), 0, mmap: true, TimeSpan.FromMilliseconds(100));
        await using var server = await TestServer.StartAsync(null, model);
        string before = await Greedy(server, "story");
        Assert.NotEqual(expectedNew, before); // the two models answer differently, so the swap is visible

        var errors = new ConcurrentBag<Exception>();
        int completed = 0;
        using var stop = new CancellationTokenSource();
        var clients = Enumerable.Range(0, 6).Select(_ => Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                try
                {
                    await Greedy(server, "story");
                    Interlocked.Increment(ref completed);
                }
#pragma warning disable CA1031 // every failure is collected and reported by the assertion below
                catch (Exception e)
#pragma warning restore CA1031
                {
                    errors.Add(e);
                }
            }
        })).ToArray();

        await Task.Delay(300);
        // quill train's swap: the old checkpoint folder out of the way, the new one renamed in
        Directory.Move(Path.Combine(run, "checkpoint"), Path.Combine(run, "checkpoint.old"));
        Directory.Move(Path.Combine(next, "checkpoint"), Path.Combine(run, "checkpoint"));
        for (int i = 0; i < 100 && model.Reloads == 0; i++) await Task.Delay(100);
        await Task.Delay(500); // traffic goes on across the swap and the old model's release
        await stop.CancelAsync();
        await Task.WhenAll(clients);

        Assert.True(errors.IsEmpty, string.Join("\n", errors.Select(e => e.Message)));
        Assert.True(completed > 6, $"only {completed} requests completed during the swap");
        Assert.Equal(1, model.Reloads);
        Assert.Equal(expectedNew, await Greedy(server, "story"));
    }

    [Fact]
    public async Task A_replacement_that_does_not_load_leaves_the_old_model_serving()
    {
        string run = Path.Combine(dir, "story");
        TinyModels.SaveCheckpoint(run);
        var model = ServedModel.Load(run, null, new SchedulerOptions(4, 64), 0, mmap: true, TimeSpan.FromMilliseconds(100));
        await using var server = await TestServer.StartAsync(null, model);
        string before = await Greedy(server, "story");
        string weights = Path.Combine(run, "checkpoint", "model.safetensors");
        string broken = Path.Combine(dir, "broken.safetensors"); // written outside, then renamed in
        await File.WriteAllBytesAsync(broken, [1, 2, 3]);
        File.Move(weights, Path.Combine(run, "checkpoint", "model.old"));
        File.Move(broken, weights);
        await Task.Delay(600);
        Assert.Equal(0, model.Reloads);
        // files that are not the model (a run's metrics, plots, temporary names) do not count as a replacement
        await File.WriteAllTextAsync(Path.Combine(run, "checkpoint", "metrics.jsonl"), "{}\n");
        await File.WriteAllTextAsync(Path.Combine(run, "loss.svg"), "<svg/>");
        await Task.Delay(400);
        Assert.Equal(0, model.Reloads);
        Assert.Equal(before, await Greedy(server, "story"));
    }
}
