// SFT data: every JSONL shape renders to the ids and mask expected from text written out here by hand (the pinned
// Alpaca text, the ChatML turns), the EOS / end-of-turn token is trained, masking defaults to replies only, bad
// lines are one-line errors naming file and line, empty replies and overlong examples are counted, and the
// held-out split depends only on an example's content.
using Quill.Data.Sft;
using Quill.Tests.Support;
using Quill.Tokenization;
using Quill.Tokenization.ChatTemplates;

namespace Quill.Tests.Data.Sft;

public sealed class SftDataTests
{
    private const string Words = "Below is an instruction that describes a task. Write a response that appropriately completes the request. "
        + "Name a colour. Blue is a colour. Hello there, how are you? I am fine. Instruction Response Input system user assistant\n";

    private static readonly Lazy<BpeTokenizer> ChatBpe = new(() => Train(["<|endoftext|>", "<|im_start|>", "<|im_end|>"]));
    private static readonly Lazy<BpeTokenizer> PlainBpe = new(() => Train(["<|endoftext|>"]));

    /// <summary>A small byte-level BPE (GPT-2 pattern) whose first special token is its EOS.</summary>
    private static BpeTokenizer Train(string[] specials) =>
        BpeTrainer.Train([string.Concat(Enumerable.Repeat(Words, 20))], new BpeTrainerOptions { VocabSize = 330, SpecialTokens = specials, Threads = 1 });

    private static string Jsonl(params string[] lines)
    {
        string path = Path.Combine(Directory.CreateTempSubdirectory("quill-sft").FullName, "data.jsonl");
        File.WriteAllLines(path, lines);
        return path;
    }

    private static SftExample One(string json) => SftReader.Parse(json, "t.jsonl", 1)!;

    /// <summary>Expected ids and mask from (text, trained) pieces encoded one by one, and single tokens.</summary>
    private static (int[] Ids, bool[] Mask) Expect(ITokenizer tok, params (object Piece, bool Trained)[] pieces)
    {
        var ids = new List<int>();
        var mask = new List<bool>();
        foreach (var (piece, trained) in pieces)
        {
            int[] add = piece is int id ? [id] : tok.Encode((string)piece, SpecialTokenSet.All);
            ids.AddRange(add);
            mask.AddRange(Enumerable.Repeat(trained, add.Length));
        }
        return (ids.ToArray(), mask.ToArray());
    }

    private static void AssertRendered((int[] Ids, bool[] Mask) expected, SftTokens got)
    {
        Assert.Equal(expected.Ids, got.Ids);
        Assert.Equal(expected.Mask, got.Trained);
    }

    [Fact]
    public void Alpaca_without_a_template_uses_the_pinned_torchtune_text_and_trains_reply_and_eos()
    {
        var tok = PlainBpe.Value;
        var r = new SftRenderer(tok, null, addBos: false).Render(One("""{"instruction": "Name a colour.", "output": "Blue."}"""));
        AssertRendered(Expect(tok,
            ("Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n### Instruction:\nName a colour.\n\n### Response:\n", false),
            ("Blue.", true), (tok.EosId, true)), r);
        Assert.Equal(tok.EosId, r.Ids[^1]);

        var withInput = new SftRenderer(tok, null, addBos: false).Render(One("""{"instruction": "Name a colour.", "input": "The sky", "output": "Blue."}"""));
        AssertRendered(Expect(tok,
            ("Below is an instruction that describes a task, paired with an input that provides further context. Write a response that appropriately completes the request.\n\n### Instruction:\nName a colour.\n\n### Input:\nThe sky\n\n### Response:\n", false),
            ("Blue.", true), (tok.EosId, true)), withInput);
        Assert.Equal(AlpacaLayout.Prompt("Name a colour.", "The sky"), tok.Decode(withInput.Ids.Where((_, i) => !withInput.Trained[i]).ToArray()));
    }

    [Fact]
    public void Chat_and_sharegpt_render_through_the_chat_template_with_only_assistant_turns_trained()
    {
        var tok = ChatBpe.Value;
        var renderer = new SftRenderer(tok, ChatTemplate.Get("chatml"), addBos: false);
        var chat = renderer.Render(One("""{"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}, {"role": "user", "content": "How are you?"}, {"role": "assistant", "content": "Fine."}]}"""));
        var expected = Expect(tok,
            ("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n", false),
            ("Hello!<|im_end|>\n", true),
            ("<|im_start|>user\nHow are you?<|im_end|>\n<|im_start|>assistant\n", false),
            ("Fine.<|im_end|>\n", true));
        AssertRendered(expected, chat); // <|im_end|> is the end-of-turn token: no EOS appended
        var share = renderer.Render(One("""{"conversations": [{"from": "system", "value": "Be brief."}, {"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello!"}, {"from": "human", "value": "How are you?"}, {"from": "gpt", "value": "Fine."}]}"""));
        AssertRendered(expected, share);
        Assert.Equal(SftFormat.ShareGpt, One("""{"conversations": [{"from": "human", "value": "a"}, {"from": "gpt", "value": "b"}]}""").Format);

        // An Alpaca row under a template is one user turn "{instruction}\n\n{input}" and one assistant turn.
        var alpaca = renderer.Render(One("""{"instruction": "Name a colour.", "input": "The sky", "output": "Blue."}"""));
        AssertRendered(Expect(tok, ("<|im_start|>user\nName a colour.\n\nThe sky<|im_end|>\n<|im_start|>assistant\n", false), ("Blue.<|im_end|>\n", true)), alpaca);
    }

    [Fact]
    public void A_template_whose_turn_end_is_not_a_special_token_gets_the_eos_after_each_reply()
    {
        var tok = PlainBpe.Value; // no <|im_end|> special: ChatML's end marker is plain text here
        var r = new SftRenderer(tok, ChatTemplate.Get("chatml"), addBos: false)
            .Render(One("""{"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]}"""));
        Assert.Equal(tok.EosId, r.Ids[^1]);
        Assert.True(r.Trained[^1]);
        Assert.Equal("Hello!<|im_end|>\n<|endoftext|>", tok.Decode(r.Ids.Where((_, i) => r.Trained[i]).ToArray()));
    }

    [Fact]
    public void Prompt_completion_is_raw_text_even_with_a_template_and_train_on_prompt_trains_everything()
    {
        var tok = ChatBpe.Value;
        var e = One("""{"prompt": "Hello there, how are you?", "completion": " I am fine."}""");
        Assert.Equal(SftFormat.PromptCompletion, e.Format);
        var expected = Expect(tok, ("Hello there, how are you?", false), (" I am fine.", true), (tok.EosId, true));
        AssertRendered(expected, new SftRenderer(tok, ChatTemplate.Get("chatml"), addBos: false).Render(e));
        var all = new SftRenderer(tok, null, addBos: false).Render(e, trainOnPrompt: true);
        Assert.Equal(expected.Ids, all.Ids);
        Assert.All(all.Trained, Assert.True);

        // The conversational form (message lists) is a chat.
        var conv = One("""{"prompt": [{"role": "user", "content": "Hi"}], "completion": [{"role": "assistant", "content": "Hello!"}]}""");
        Assert.Equal(SftFormat.Chat, conv.Format);
        Assert.Equal(["user", "assistant"], conv.Messages.Select(m => m.Role));
    }

    [Fact]
    public void A_conversation_without_a_template_continues_the_alpaca_layout_turn_by_turn()
    {
        var tok = PlainBpe.Value;
        var r = new SftRenderer(tok, null, addBos: false).Render(One("""{"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}, {"role": "user", "content": "Name a colour."}, {"role": "assistant", "content": "Blue."}]}"""));
        AssertRendered(Expect(tok,
            ("Be brief.\n\n### Instruction:\nHi\n\n### Response:\n", false), ("Hello!", true), (tok.EosId, true),
            ("\n\n### Instruction:\nName a colour.\n\n### Response:\n", false), ("Blue.", true), (tok.EosId, true)), r);
    }

    [TestDataFact("llama2c/tok512.bin")]
    public void A_sentencepiece_base_gets_bos_and_prompt_ids_equal_to_what_inference_encodes()
    {
        var tok = TokenizerLoader.Load(TestData.PathOf("llama2c/tok512.bin"));
        var r = new SftRenderer(tok, null, addBos: true).Render(One("""{"instruction": "Tell a story.", "output": "Once upon a time."}"""));
        string prompt = "Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n### Instruction:\nTell a story.\n\n### Response:\n";
        int[] promptIds = [tok.BosId, .. tok.Encode(prompt)]; // what `quill generate --prompt` feeds a llama2.c model
        Assert.Equal(promptIds, r.Ids[..promptIds.Length]);
        Assert.All(r.Trained[..promptIds.Length], Assert.False);
        Assert.All(r.Trained[promptIds.Length..], Assert.True);
        Assert.Equal(tok.EosId, r.Ids[^1]);
        Assert.Equal("Once upon a time.", tok.Decode(r.Ids[promptIds.Length..^1]).TrimStart());
        Assert.Equal(tok.Encode(prompt + "Once upon a time."), r.Ids[1..^1]);
    }

    [Fact]
    public void Bad_lines_are_one_line_errors_naming_the_file_and_line()
    {
        string ok = """{"instruction": "a", "output": "b"}""";
        foreach (var (bad, words) in new[]
        {
            ("{not json", "invalid JSON"),
            ("""{"text": "hello"}""", "unknown example shape (fields: text)"),
            ("""[1, 2]""", "expected a JSON object"),
            ("""{"instruction": 3, "output": "b"}""", "\"instruction\" must be a string"),
            ("""{"messages": [{"role": "robot", "content": "x"}, {"role": "assistant", "content": "y"}]}""", "messages[0].role \"robot\" is not supported"),
            ("""{"messages": [{"role": "assistant", "content": "x"}, {"role": "user", "content": "y"}]}""", "turn 0 is assistant where user belongs"),
            ("""{"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}, {"role": "user", "content": "z"}]}""", "the last turn is a user turn"),
            ("""{"conversations": [{"from": "human"}, {"from": "gpt", "value": "y"}]}""", "conversations[0].value is missing"),
            ("""{"messages": "hi"}""", "\"messages\" must be a list"),
        })
        {
            string path = Jsonl(ok, "", bad);
            var e = Assert.Throws<InvalidFileException>(() => SftReader.Read(path));
            Assert.StartsWith(path + ":3: ", e.Message);
            Assert.Contains(words, e.Message);
            Assert.DoesNotContain('\n', e.Message);
        }
    }

    [Fact]
    public void Empty_replies_are_skipped_and_counted()
    {
        string path = Jsonl("""{"instruction": "a", "output": "b"}""", """{"instruction": "a", "output": "  "}""",
            """{"prompt": "p", "completion": ""}""", """{"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": ""}]}""");
        var file = SftReader.Read(path);
        Assert.Single(file.Examples);
        Assert.Equal([2, 3, 4], file.SkippedEmptyLines);
        var data = SftDataset.Build(file, new SftRenderer(PlainBpe.Value, null, false), new SftOptions { ValFraction = 0 });
        Assert.Equal(3, data.Report.SkippedEmpty);
        Assert.Contains("3 skipped (empty reply)", data.Report.Describe());
    }

    [Fact]
    public void A_file_whose_every_reply_is_empty_reports_zero_examples_and_the_skips()
    {
        string path = Jsonl("""{"instruction": "a", "output": ""}""", """{"prompt": "p", "completion": " "}""");
        var data = SftDataset.Build(SftReader.Read(path), new SftRenderer(PlainBpe.Value, null, false), new SftOptions { ValFraction = 0 });
        Assert.Empty(data.Train);
        Assert.StartsWith("0 examples; ", data.Report.Summary(), StringComparison.Ordinal);
        Assert.Contains("2 skipped (empty reply)", data.Report.Summary(), StringComparison.Ordinal);
        Assert.Equal($"{path}: {data.Report.Summary()}", data.Report.Describe());
    }

    [Fact]
    public void Overlong_examples_are_truncated_keeping_the_start_or_skipped_and_counted()
    {
        var tok = PlainBpe.Value;
        var renderer = new SftRenderer(tok, null, false);
        string longReply = string.Join(" ", Enumerable.Repeat("Blue is a colour.", 30));
        string path = Jsonl("""{"instruction": "Name a colour.", "output": "Blue."}""", $$"""{"instruction": "Name a colour.", "output": "{{longReply}}"}""",
            $$"""{"instruction": "{{longReply}}", "output": "Blue."}""");
        int shortLength = renderer.Render(One("""{"instruction": "Name a colour.", "output": "Blue."}""")).Ids.Length;
        int promptLength = tok.Encode(AlpacaLayout.Prompt("Name a colour.")).Length;
        var options = new SftOptions { MaxTokens = Math.Max(shortLength, promptLength + 10), ValFraction = 0 };

        var cut = SftDataset.Load(path, renderer, options);
        Assert.Equal((1, 1), (cut.Report.Truncated - cut.Report.SkippedNoTarget, cut.Report.SkippedNoTarget)); // the long prompt leaves nothing to train
        Assert.Equal(2, cut.Train.Count);
        var truncated = cut.Train.Single(e => e.Line == 2);
        Assert.Equal(options.MaxTokens, truncated.Ids.Length);
        Assert.Equal(renderer.Render(SftReader.Read(path).Examples[1]).Ids[..options.MaxTokens], truncated.Ids);
        Assert.Contains("2 truncated", cut.Report.Describe());

        var skip = SftDataset.Load(path, renderer, options with { Overlong = OverlongPolicy.Skip });
        Assert.Equal((2, 0, 1), (skip.Report.SkippedTooLong, skip.Report.Truncated, skip.Train.Count));
    }

    [Fact]
    public void The_held_out_split_depends_only_on_each_example()
    {
        var lines = Enumerable.Range(0, 300).Select(i => $$"""{"instruction": "Question {{i}}", "output": "Answer {{i}}"}""").ToArray();
        var renderer = new SftRenderer(PlainBpe.Value, null, false);
        var options = new SftOptions { ValFraction = 0.2 };
        var a = SftDataset.Load(Jsonl(lines), renderer, options);
        var reversed = SftDataset.Load(Jsonl([.. lines.Reverse(), """{"instruction": "new", "output": "one"}"""]), renderer, options);
        string Key(SftTokens t) => PlainBpe.Value.Decode(t.Ids);
        Assert.Equal(a.Val.Select(Key).Order(), reversed.Val.Select(Key).Where(k => !k.Contains("new", StringComparison.Ordinal)).Order());
        Assert.InRange(a.Val.Count, 35, 85);
        Assert.Equal(300, a.Train.Count + a.Val.Count);
        Assert.Equal(a.Report.TrainTargets, a.Train.Sum(t => (long)t.TrainedTargets));
    }
}
