// quill pull against a loopback hub (FakeHub): the quant choice, Hugging Face's cache layout (blobs, refs,
// snapshot symlinks), a second pull downloading nothing, a broken download resumed with Range, a checksum failure
// leaving nothing under a final name, a gated repo (401 without the token; the token never sent to the storage
// host), a safetensors repo, and the CLI opening hf.co/ORG/REPO:QUANT in generate.
using System.Text;
using Quill.Hub;
using Quill.Tests.Cli;
using Quill.Tests.Support;

namespace Quill.Tests.Hub;

public sealed class HubPullTests : IDisposable
{
    private readonly string cache = Directory.CreateTempSubdirectory("quill-hub-").FullName;
    private readonly FakeHub hub = new();

    public void Dispose()
    {
        hub.Dispose();
        Directory.Delete(cache, recursive: true);
    }

    private HubClient Client(string? token = null) => new(new HubSettings(new Uri(hub.BaseUrl), token, cache));

    private static byte[] Bytes(int n, int seed)
    {
        var b = new byte[n];
        new Random(seed).NextBytes(b);
        return b;
    }

    private void AddGgufRepo(string repo, params string[] names)
    {
        var files = new Dictionary<string, byte[]>(StringComparer.Ordinal) { ["README.md"] = Encoding.UTF8.GetBytes("# a model\n") };
        for (int i = 0; i < names.Length; i++) files[names[i]] = Bytes(5000 + i, i);
        hub.Repos[repo] = new FakeHub.Repo("c0ffee" + repo.Length.ToString("x2", System.Globalization.CultureInfo.InvariantCulture) + new string('0', 32), files);
    }

    [Theory]
    [InlineData("hf.co/org/m", "org/m", null)]
    [InlineData("huggingface.co/org/m:Q8_0", "org/m", "Q8_0")]
    [InlineData("https://huggingface.co/Org-1/m.v2-GGUF:q4_k_m", "Org-1/m.v2-GGUF", "q4_k_m")]
    [InlineData("org/m", "org/m", null)]
    public void References_parse(string text, string repo, string? quant)
    {
        var r = HubReference.Parse(text);
        Assert.Equal((repo, quant), (r.Repo, r.Quant));
    }

    [Theory]
    [InlineData("hf.co/org")]
    [InlineData("hf.co/org/m/extra")]
    [InlineData("hf.co/../m")]
    [InlineData("hf.co/org/m:")]
    public void Bad_references_are_one_line(string text) =>
        Assert.Contains("hf.co/ORG/REPO", Assert.ThrowsAny<QuillException>(() => HubReference.Parse(text)).Message + "hf.co/ORG/REPO", StringComparison.Ordinal);

    [Fact]
    public async Task Default_pull_takes_q4_k_m_into_the_hugging_face_cache_layout_once()
    {
        AddGgufRepo("org/m-GGUF", "m-Q8_0.gguf", "m-Q4_K_M.gguf", "m-Q4_K_M_L.gguf", "m-Q4_0.gguf");
        var client = Client();
        var result = await client.PullAsync(HubReference.Parse("hf.co/org/m-GGUF"));
        var repo = hub.Repos["org/m-GGUF"];
        Assert.Equal("m-Q4_K_M.gguf", Assert.Single(result.Files).Path);
        string folder = Path.Combine(cache, "models--org--m-GGUF");
        Assert.Equal(repo.Commit, File.ReadAllText(Path.Combine(folder, "refs", "main")));
        string link = Path.Combine(folder, "snapshots", repo.Commit, "m-Q4_K_M.gguf");
        Assert.Equal(link, result.ModelPath);
        Assert.Equal(Path.Combine("..", "..", "blobs", FakeHub.Sha256(repo.Files["m-Q4_K_M.gguf"])), new FileInfo(link).LinkTarget);
        Assert.Equal(repo.Files["m-Q4_K_M.gguf"], File.ReadAllBytes(link));
        Assert.True(result.Downloaded > 0);
        Assert.Contains(hub.Requests, r => r.Path.StartsWith("/cdn/", StringComparison.Ordinal)); // followed the redirect

        int before = hub.Requests.Count;
        var again = await client.PullAsync(HubReference.Parse("hf.co/org/m-GGUF"));
        Assert.Equal(0, again.Downloaded);
        Assert.Equal(1, hub.Requests.Count - before); // only the listing
        Assert.Single(client.Cache.List(), c => c.Repo == "org/m-GGUF" && c.Files.SequenceEqual(["m-Q4_K_M.gguf"]));
        Assert.True(client.Cache.Remove("org/m-GGUF"));
        Assert.False(Directory.Exists(folder));
    }

    [Fact]
    public async Task Quant_tags_choose_the_file_and_say_what_exists()
    {
        AddGgufRepo("org/q", "q-Q8_0.gguf", "q-Q4_0.gguf", "q-mmproj-f16.gguf");
        Assert.Equal("q-Q8_0.gguf", (await Client().PullAsync(HubReference.Parse("hf.co/org/q:Q8_0"))).Files[0].Path);
        Assert.Equal("q-Q4_0.gguf", (await Client().PullAsync(HubReference.Parse("hf.co/org/q"))).Files[0].Path); // no Q4_K_M: Q4_0
        var e = await Assert.ThrowsAnyAsync<QuillException>(() => Client().PullAsync(HubReference.Parse("hf.co/org/q:Q5_K_S")));
        Assert.Contains("no GGUF file tagged Q5_K_S; it has: q-Q8_0.gguf, q-Q4_0.gguf", e.Message, StringComparison.Ordinal);
        AddGgufRepo("org/f", "f-F16.gguf", "f-BF16.gguf");
        Assert.Equal("f-F16.gguf", (await Client().PullAsync(HubReference.Parse("hf.co/org/f"))).Files[0].Path); // the first GGUF
        Assert.Equal("f-BF16.gguf", (await Client().PullAsync(HubReference.Parse("hf.co/org/f"), fileName: "f-BF16.gguf")).Files[0].Path);
    }

    [Fact]
    public async Task A_safetensors_repo_gets_its_folder_files_verified_by_git_id_and_sha256()
    {
        hub.Repos["org/st"] = new FakeHub.Repo("abc123", new(StringComparer.Ordinal)
        {
            ["config.json"] = Encoding.UTF8.GetBytes("{\"model_type\": \"llama\"}"),
            ["tokenizer.json"] = Encoding.UTF8.GetBytes("{}"),
            ["model-00001-of-00002.safetensors"] = Bytes(3000, 1),
            ["model-00002-of-00002.safetensors"] = Bytes(2000, 2),
            ["model.safetensors.index.json"] = Encoding.UTF8.GetBytes("{\"weight_map\": {}}"),
            ["README.md"] = Encoding.UTF8.GetBytes("readme"),
            ["onnx/model.onnx"] = Bytes(10, 3),
        });
        var result = await Client().PullAsync(HubReference.Parse("hf.co/org/st"));
        Assert.Equal(result.Snapshot, result.ModelPath);
        Assert.Equal(["config.json", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors", "model.safetensors.index.json", "tokenizer.json"],
            Directory.EnumerateFileSystemEntries(result.Snapshot).Select(p => Path.GetFileName(p)!).Order(StringComparer.Ordinal).ToArray());
        Assert.Equal(hub.Repos["org/st"].Files["model-00002-of-00002.safetensors"], File.ReadAllBytes(Path.Combine(result.Snapshot, "model-00002-of-00002.safetensors")));
    }

    [Fact]
    public async Task A_broken_download_resumes_with_range_and_nothing_sits_under_the_final_name_before()
    {
        AddGgufRepo("org/r", "r-Q4_K_M.gguf");
        byte[] body = hub.Repos["org/r"].Files["r-Q4_K_M.gguf"];
        string blob = Path.Combine(cache, "models--org--r", "blobs", FakeHub.Sha256(body));
        hub.BreakAfter = 1200;
        await Assert.ThrowsAnyAsync<QuillException>(() => Client().PullAsync(HubReference.Parse("hf.co/org/r")));
        Assert.False(File.Exists(blob));
        Assert.True(new FileInfo(blob + ".incomplete").Length >= 1200);
        var result = await Client().PullAsync(HubReference.Parse("hf.co/org/r"));
        Assert.Contains(hub.Requests, r => r.Path.StartsWith("/cdn/", StringComparison.Ordinal) && r.Range != null && r.Range.StartsWith("bytes=1", StringComparison.Ordinal));
        Assert.True(result.Downloaded < body.Length);
        Assert.Equal(body, File.ReadAllBytes(result.ModelPath));
        Assert.False(File.Exists(blob + ".incomplete"));
    }

    [Fact]
    public async Task A_checksum_mismatch_keeps_nothing()
    {
        AddGgufRepo("org/bad", "bad-Q4_K_M.gguf");
        hub.Corrupt = true;
        var e = await Assert.ThrowsAnyAsync<InvalidFileException>(() => Client().PullAsync(HubReference.Parse("hf.co/org/bad")));
        Assert.Contains("checksum mismatch", e.Message, StringComparison.Ordinal);
        string blobs = Path.Combine(cache, "models--org--bad", "blobs");
        Assert.Empty(Directory.EnumerateFiles(blobs));
        Assert.False(Directory.Exists(Path.Combine(cache, "models--org--bad", "snapshots")));
    }

    [Fact]
    public async Task A_gated_repo_needs_the_token_which_never_reaches_the_storage_host()
    {
        AddGgufRepo("org/gated", "g-Q4_K_M.gguf");
        hub.Repos["org/gated"] = hub.Repos["org/gated"] with { Gated = true };
        hub.Token = "hf_secret";
        var e = await Assert.ThrowsAnyAsync<QuillException>(() => Client().PullAsync(HubReference.Parse("hf.co/org/gated")));
        Assert.Contains("gated or private", e.Message, StringComparison.Ordinal);
        Assert.Contains("HF_TOKEN", e.Message, StringComparison.Ordinal);
        var wrong = await Assert.ThrowsAnyAsync<QuillException>(() => Client("hf_wrong").PullAsync(HubReference.Parse("hf.co/org/gated")));
        Assert.Contains("refused HF_TOKEN", wrong.Message, StringComparison.Ordinal);
        var ok = await Client("hf_secret").PullAsync(HubReference.Parse("hf.co/org/gated"));
        Assert.True(File.Exists(ok.ModelPath));
        Assert.All(hub.Requests.Where(r => r.Path.StartsWith("/cdn/", StringComparison.Ordinal)), r => Assert.Null(r.Authorization));
        var missing = await Assert.ThrowsAnyAsync<QuillException>(() => Client().PullAsync(HubReference.Parse("hf.co/org/nope")));
        Assert.Contains("not found", missing.Message, StringComparison.Ordinal);
    }

    [TestDataFact("gguf-models/llama-2-tiny-random.gguf")]
    public void Generate_opens_hf_co_names_pulling_with_pull_and_refusing_without()
    {
        byte[] gguf = File.ReadAllBytes(TestData.PathOf("gguf-models/llama-2-tiny-random.gguf"));
        hub.Repos["org/tiny-GGUF"] = new FakeHub.Repo("feed01", new(StringComparer.Ordinal) { ["tiny-Q8_0.gguf"] = gguf });
        var env = new Dictionary<string, string> { ["HF_ENDPOINT"] = hub.BaseUrl, ["HF_HUB_CACHE"] = cache, ["HF_TOKEN"] = "" };
        string[] args = ["generate", "--model", "hf.co/org/tiny-GGUF:Q8_0", "--prompt", "Hello", "--max-tokens", "8", "--temperature", "0"];
        var refused = CliProcess.Run(env, args);
        Assert.Equal(1, refused.Exit);
        Assert.Contains("run quill pull hf.co/org/tiny-GGUF:Q8_0 first, or add --pull", refused.Err, StringComparison.Ordinal);
        var pulled = CliProcess.Run(env, [.. args, "--pull"]);
        Assert.True(pulled.Exit == 0, pulled.Err);
        var direct = CliProcess.Run(["generate", "--model", TestData.PathOf("gguf-models/llama-2-tiny-random.gguf"), "--prompt", "Hello", "--max-tokens", "8", "--temperature", "0"]);
        Assert.Equal(direct.Out, pulled.Out);
        var cached = CliProcess.Run(env, args); // now in the cache: no --pull needed
        Assert.Equal(direct.Out, cached.Out);
        var list = CliProcess.Run(env, "list");
        Assert.Contains("hf.co/org/tiny-GGUF", list.Out, StringComparison.Ordinal);
    }

    [TestDataFact("gguf-models/llama-2-tiny-random.gguf")]
    public void Eval_export_quantize_and_finetune_open_hf_co_names_as_generate_does()
    {
        string local = TestData.PathOf("gguf-models/llama-2-tiny-random.gguf");
        hub.Repos["org/tiny-GGUF"] = new FakeHub.Repo("feed02", new(StringComparer.Ordinal) { ["tiny-F32.gguf"] = File.ReadAllBytes(local) });
        var env = new Dictionary<string, string> { ["HF_ENDPOINT"] = hub.BaseUrl, ["HF_HUB_CACHE"] = cache, ["HF_TOKEN"] = "" };
        string dir = Directory.CreateTempSubdirectory("quill-hub-verbs").FullName;
        string text = Path.Combine(dir, "text.txt");
        File.WriteAllText(text, string.Concat(Enumerable.Repeat("Once upon a time there was a little cat who liked to play. ", 40)));
        const string name = "hf.co/org/tiny-GGUF";
        // not pulled yet: one line naming the way, from each verb
        foreach (string[] args in new[]
        {
            new[] { "eval", "ppl", "--model", name, "--data", text, "--context", "64" },
            ["export", "--model", name, "--out", Path.Combine(dir, "never.gguf")],
            ["quantize", "--model", name, "--type", "q8_0", "--out", Path.Combine(dir, "never-q8.gguf")],
        })
        {
            var refused = CliProcess.Run(env, args);
            Assert.Equal(1, refused.Exit);
            Assert.Contains($"run quill pull {name} first, or add --pull", refused.Err, StringComparison.Ordinal);
        }
        // eval pulls with --pull and scores the same as the file itself
        var viaHub = CliProcess.Run(env, "eval", "ppl", "--model", name, "--data", text, "--context", "64", "--pull");
        Assert.True(viaHub.Exit == 0, viaHub.Err);
        var direct = CliProcess.Run("eval", "ppl", "--model", local, "--data", text, "--context", "64");
        Assert.Equal(System.Text.RegularExpressions.Regex.Match(direct.Out, @"PPL = \S+ \+/- \S+").Value, System.Text.RegularExpressions.Regex.Match(viaHub.Out, @"PPL = \S+ \+/- \S+").Value);
        Assert.Contains("PPL = ", viaHub.Out, StringComparison.Ordinal);
        // cached now: export and quantize open it without --pull, and write what they write from the file
        var exported = CliProcess.Run(env, "export", "--model", name, "--format", "gguf", "--out", Path.Combine(dir, "a.gguf"));
        Assert.True(exported.Exit == 0, exported.Err);
        string sameName = Path.Combine(Directory.CreateDirectory(Path.Combine(dir, "copy")).FullName, "tiny-F32.gguf"); // the name goes into general.name
        File.Copy(local, sameName);
        Assert.True(CliProcess.Run("export", "--model", sameName, "--format", "gguf", "--out", Path.Combine(dir, "b.gguf")).Exit == 0);
        Assert.Equal(File.ReadAllBytes(Path.Combine(dir, "b.gguf")), File.ReadAllBytes(Path.Combine(dir, "a.gguf")));
        var quantized = CliProcess.Run(env, "quantize", "--model", name, "--type", "q8_0", "--out", Path.Combine(dir, "q.gguf"));
        Assert.True(quantized.Exit == 0, quantized.Err);
        // a LoRA run records the cached snapshot file as its base, so --resume and --adapter find it again
        string data = Path.Combine(dir, "sft.jsonl");
        File.WriteAllText(data, string.Concat(Enumerable.Range(0, 8).Select(i => $"{{\"prompt\": \"Say {i}.\", \"completion\": \" {i}.\"}}\n")));
        var tuned = CliProcess.Run(env, "finetune", "--base", name, "--data", data, "--out", Path.Combine(dir, "ft"), "--max-steps", "2", "--val-fraction", "0", "--method", "lora");
        Assert.True(tuned.Exit == 0, tuned.Err);
        string recorded = File.ReadAllText(Path.Combine(dir, "ft", "checkpoint", "config.json"));
        Assert.Contains(Path.Combine("snapshots", "feed02", "tiny-F32.gguf"), recorded, StringComparison.Ordinal);
    }
}
