// The request-following and story-question scorers on scripted replies (whole words, exact answers, the stop rule,
// the rates), and the evaluations' generation path (GreedyAnswers) on hand-made models: one that can only say
// end-of-text, one that never stops, and a "bigram" model wired by hand to answer every message with "Ben, fox." or
// "Ben." and stop, which follows a request for a fox named Ben and no other, and answers "Who found the shell?" right.
using Quill.Data;
using Quill.Evaluation;
using Quill.Inference;
using Quill.Models;
using Quill.Tokenization;

namespace Quill.Tests.Evaluation;

public class RequestFollowingTests
{
    private static readonly StoryInstruction FoxBen = Request("fox", "Ben", "shell");
    private static readonly StoryInstruction CatTom = Request("cat", "Tom", "cup");

    private static StoryInstruction Request(string animal, string name, string thing) =>
        new($"Tell me a story about a {animal} named {name} who finds a {thing}.", "", new StoryCast(animal, name, thing), IsQuestion: false);

    [Fact]
    public void A_reply_follows_when_it_names_the_animal_and_the_name_as_words_and_stops()
    {
        var good = RequestFollowing.Score(FoxBen, "Once upon a time, there was a little fox named Ben. Ben found a shell.", stopped: true);
        Assert.True(good.Followed);
        Assert.True(good.UsesThing);
        Assert.False(RequestFollowing.Score(FoxBen, good.Reply, stopped: false).Followed); // ran into the limit
        Assert.False(RequestFollowing.Score(FoxBen, "There was a little fox named Tom.", stopped: true).Followed);
        Assert.False(RequestFollowing.Score(FoxBen, "There was a little cat named Ben.", stopped: true).Followed);
        // whole words only, case as written
        Assert.False(RequestFollowing.Score(FoxBen, "The foxes and Benny.", stopped: true).Followed);
        Assert.False(RequestFollowing.Score(FoxBen, "a Fox named ben", stopped: true).Followed);
        var punctuated = RequestFollowing.Score(FoxBen, "\"Ben's fox!\"", stopped: true);
        Assert.True(punctuated.Followed);
        Assert.False(punctuated.UsesThing); // the object is reported, not required
        Assert.False(RequestFollowing.Score(FoxBen, "", stopped: true).Followed);
    }

    [Fact]
    public void The_report_counts_scripted_replies()
    {
        var scripted = new Dictionary<StoryInstruction, (string, bool)>
        {
            [FoxBen] = ("A fox named Ben found a shell.", true),
            [CatTom] = ("A cat named Tom found a cup and went on and on", false),
            [Request("owl", "Mia", "key")] = ("An owl named Leo found a key.", true),
            [Request("bear", "Sam", "map")] = ("A bear named Sam.", true),
        };
        var report = RequestFollowing.Evaluate([.. scripted.Keys], r => scripted[r]);
        Assert.Equal(4, report.Replies.Count);
        Assert.Equal(2, report.FollowedCount);
        Assert.Equal(0.5, report.Score);
        Assert.Equal(0.75, report.StopRate);
        Assert.Equal(1.0, report.AnimalRate);
        Assert.Equal(0.75, report.NameRate);
        Assert.Equal(0.75, report.ThingRate);
        Assert.Equal("followed 2/4 (50.0%): animal 100.0%, name 75.0%, object 75.0%, stopped 75.0%", report.Describe());
        Assert.Equal(0, RequestFollowing.Evaluate([], _ => ("", true)).Score);
    }

    [Fact]
    public void A_model_that_only_says_end_of_text_stops_at_once_and_one_that_never_does_runs_to_the_limit()
    {
        var tok = CharTokenizer.Train([FoxBen.Prompt, CatTom.Prompt], CharTokenizer.DefaultEndOfText);
        using (var eos = ConstantModel(tok, tok.EosId))
        {
            var report = RequestFollowing.Evaluate(eos, [FoxBen, CatTom], new AnswerOptions { MaxTokens = 30 });
            Assert.All(report.Replies, r => Assert.True(r.Stopped && r.Reply.Length == 0 && !r.Followed));
        }
        int x = tok.Encode("x")[0];
        using var chatter = ConstantModel(tok, x);
        var runOn = RequestFollowing.Evaluate(chatter, [FoxBen, CatTom, FoxBen], new AnswerOptions { MaxTokens = 30, BatchSize = 2 });
        Assert.All(runOn.Replies, r => Assert.True(!r.Stopped && r.Reply == new string('x', 30)));
        Assert.Throws<InvalidConfigException>(() => RequestFollowing.Evaluate(chatter, [FoxBen], new AnswerOptions { MaxTokens = 0 }));
    }

    [Fact]
    public void A_hand_wired_model_answers_in_the_chat_layout_and_is_judged_on_what_it_says()
    {
        const string reply = "Ben, fox."; // every character once, so a bigram table can spell it
        var tok = CharTokenizer.Train([FoxBen.Prompt, CatTom.Prompt, reply], CharTokenizer.DefaultEndOfText);
        using var model = BigramModel(tok, Chain(tok, reply)); // the plain transcript's prompt ends with "Assistant:"
        var report = RequestFollowing.Evaluate(model, [FoxBen, CatTom], new AnswerOptions { MaxTokens = 40 });
        Assert.Equal(reply, report.Replies[0].Reply);
        Assert.True(report.Replies[0].Stopped);
        Assert.True(report.Replies[0].Followed);
        Assert.False(report.Replies[0].UsesThing);
        Assert.Equal(reply, report.Replies[1].Reply);
        Assert.False(report.Replies[1].Followed);
        Assert.Equal(0.5, report.Score);
        // a limit shorter than the reply: cut, and not stopped
        var cut = RequestFollowing.Evaluate(model, [FoxBen], new AnswerOptions { MaxTokens = reply.Length });
        Assert.Equal(reply, cut.Replies[0].Reply);
        Assert.False(cut.Replies[0].Stopped);
    }

    [Fact]
    public void A_question_is_answered_when_the_reply_is_exactly_the_answer_and_stops()
    {
        var q = new StoryInstruction("Once upon a time, there was a little fox named Ben. Who found the shell?", "Ben.", FoxBen.Cast, IsQuestion: true);
        var scripted = new Dictionary<string, (string, bool)> { ["Ben."] = ("Ben.", true), [" Ben. "] = (" Ben. ", true), ["Tom."] = ("Tom.", true), ["run-on"] = ("Ben.", false), ["wordy"] = ("It was Ben.", true) };
        foreach (var (label, (answer, stopped)) in scripted)
        {
            var r = StoryQuestions.Evaluate([q], _ => (answer, stopped));
            Assert.True(r.Answers[0].Correct == label is "Ben." or " Ben. ", label);
        }
        var queue = new Queue<(string, bool)>(scripted.Values);
        var report = StoryQuestions.Evaluate([q, q, q, q, q], _ => queue.Dequeue());
        Assert.Equal("answered 2/5 (40.0%) exactly", report.Describe());

        // the hand-wired model says "Ben." and stops, whatever the story
        var tok = CharTokenizer.Train([q.Instruction, StoryInstructions.Prompt("")], CharTokenizer.DefaultEndOfText);
        using var model = BigramModel(tok, Chain(tok, "Ben."));
        var judged = StoryQuestions.Evaluate(model, [q, q with { Reply = "Tom." }]);
        Assert.Equal("Ben.", judged.Answers[0].Answer);
        Assert.Equal(1, judged.CorrectCount);
        Assert.Equal(0.5, judged.Score);
    }

    /// <summary>Next-token pairs that spell text after the transcript's "Assistant:" and then end with EOS.</summary>
    private static Dictionary<int, int> Chain(CharTokenizer tok, string text)
    {
        var chain = new Dictionary<int, int>();
        int previous = tok.Encode(":")[0];
        foreach (int id in tok.Encode(text))
        {
            chain[previous] = id;
            previous = id;
        }
        chain[previous] = tok.EosId;
        return chain;
    }

    /// <summary>A GPT-2 whose final norm ignores its input, so every position predicts token `always`.</summary>
    private static InferenceModel ConstantModel(CharTokenizer tok, int always)
    {
        var lm = LanguageModel.Create(new ModelConfig { Arch = "gpt2", VocabSize = tok.VocabSize, NLayer = 1, NHead = 2, NEmbd = 16, BlockSize = 128 }, 1);
        var p = lm.Parameters;
        p["transformer.ln_f.weight"].Span.Clear();
        p["transformer.ln_f.bias"].Span.Fill(1f);
        var wte = p["transformer.wte.weight"].Span; // tied: the logits are each row's sum
        wte.Clear();
        wte.Slice(always * 16, 16).Fill(1f);
        var model = InferenceModel.FromLanguageModel(lm);
        model.Tokenizer = tok;
        return model;
    }

    /// <summary>
    /// A GPT-2 with every block zeroed (the residual stream is the one-hot token embedding) and an untied head whose
    /// row next holds the one-hot of each token that should precede it: the next token depends only on the current one.
    /// </summary>
    private static InferenceModel BigramModel(CharTokenizer tok, Dictionary<int, int> next)
    {
        const int d = 64;
        Assert.True(tok.VocabSize <= d);
        var lm = LanguageModel.Create(new ModelConfig { Arch = "gpt2", VocabSize = tok.VocabSize, NLayer = 1, NHead = 2, NEmbd = d, BlockSize = 256, TieEmbeddings = false }, 1);
        foreach (var t in lm.Parameters) t.Span.Clear();
        var p = lm.Parameters;
        p["transformer.ln_f.weight"].Span.Fill(1f);
        var wte = p["transformer.wte.weight"].Span;
        for (int id = 0; id < tok.VocabSize; id++) wte[id * d + id] = 1f;
        var head = p["lm_head.weight"].Span;
        foreach (var (from, to) in next) head[to * d + from] = 10f;
        var model = InferenceModel.FromLanguageModel(lm);
        model.Tokenizer = tok;
        return model;
    }
}
