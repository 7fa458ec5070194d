// The story instruction data: requests get stories with exactly the requested cast, questions are answered from
// their story, held-out casts never reach training (fine-tuning or, when excluded, pretraining), the set is
// deterministic for a seed, and the JSONL reads back as prompt/completion in the layout `quill chat` sends.
using System.Security.Cryptography;
using System.Text;
using Quill.Data;
using Quill.Data.Sft;
using Quill.Evaluation;
using Quill.Inference;
using Quill.Tensors;
using Quill.Tokenization;

namespace Quill.Tests.Data;

public class StoryInstructionsTests
{
    private static readonly StoryInstructionSet Set = StoryInstructions.Generate(2000, seed: 5);

    [Fact]
    public void Requested_stories_use_exactly_the_requested_animal_name_and_object()
    {
        var requests = Set.Train.Where(e => !e.IsQuestion).Concat(Set.HeldOut).ToList();
        Assert.True(requests.Count > 1500);
        foreach (var e in requests)
        {
            var c = e.Cast;
            foreach (string word in new[] { c.Animal, c.Name, c.Thing })
            {
                Assert.True(RequestFollowing.HasWord(e.Instruction, word), $"request \"{e.Instruction}\" lacks {word}");
                Assert.True(RequestFollowing.HasWord(e.Reply, word), $"the story for \"{e.Instruction}\" lacks {word}");
            }
            // no other animal or object of the lists takes the cast's place
            Assert.DoesNotContain(StoryCorpus.AnimalWords.Where(a => a != c.Animal), a => RequestFollowing.HasWord(e.Reply, a));
            Assert.DoesNotContain(StoryCorpus.ThingWords.Where(t => t != c.Thing), t => RequestFollowing.HasWord(e.Reply, t));
            Assert.False(e.Reply.EndsWith('\n'));
        }
        Assert.Contains(requests, e => e.Instruction.StartsWith("Tell me a story about a fox named", StringComparison.Ordinal) || e.Instruction.Contains("the fox?", StringComparison.Ordinal));
        Assert.Contains(requests, e => e.Instruction.Contains("an owl", StringComparison.Ordinal));
        Assert.DoesNotContain(requests, e => e.Instruction.Contains("a owl", StringComparison.Ordinal));
    }

    [Fact]
    public void Questions_are_about_the_story_they_follow_and_answered_from_it()
    {
        var questions = Set.Train.Where(e => e.IsQuestion).ToList();
        Assert.InRange(questions.Count, 2000 / 4 - 100, 2000 / 4 + 100);
        questions.AddRange(Set.HeldOutQuestions);
        foreach (var e in questions)
        {
            Assert.DoesNotContain('\n', e.Instruction); // one line: typable in `quill chat`
            int split = e.Instruction.LastIndexOf(". ", StringComparison.Ordinal);
            string story = e.Instruction[..(split + 1)], question = e.Instruction[(split + 2)..];
            Assert.EndsWith("?", question, StringComparison.Ordinal);
            Assert.True(RequestFollowing.HasWord(story, e.Cast.Name) && RequestFollowing.HasWord(story, e.Cast.Thing));
            Assert.EndsWith(".", e.Reply, StringComparison.Ordinal);
            // every word of the answer but the article and "It was" appears in the story
            foreach (string w in e.Reply.TrimEnd('.').Replace("'s", "", StringComparison.Ordinal).Split(' ').Where(w => w is not ("A" or "An" or "It" or "was" or "To")))
                Assert.True(RequestFollowing.HasWord(story, w) || RequestFollowing.HasWord(story, w.ToLowerInvariant()), $"answer word {w} of \"{question}\" is not in the story");
        }
        var found = questions.First(e => e.Instruction.EndsWith($"Who found the {e.Cast.Thing}?", StringComparison.Ordinal));
        Assert.Equal(found.Cast.Name + ".", found.Reply);
    }

    [Fact]
    public void Held_out_casts_are_200_distinct_ones_that_no_training_example_uses()
    {
        Assert.Equal(StoryInstructions.DefaultHeldOut, Set.HeldOut.Count);
        Assert.Equal(200, Set.HeldOutCasts.Count);
        Assert.Equal(Set.HeldOutCasts.OrderBy(c => c.ToString()), Set.HeldOut.Select(e => e.Cast).OrderBy(c => c.ToString()));
        Assert.All(Set.HeldOut, e => Assert.False(e.IsQuestion));
        Assert.Equal(Set.HeldOut.Select(e => e.Cast), Set.HeldOutQuestions.Select(e => e.Cast));
        Assert.All(Set.HeldOutQuestions, e => Assert.True(e.IsQuestion));
        Assert.DoesNotContain(Set.Train, e => Set.HeldOutCasts.Contains(e.Cast));
        // nor does any training story tell a held-out cast's "animal named name" with its object
        foreach (var c in Set.HeldOutCasts.Take(50))
        {
            string phrase = $" {c.Animal} named {c.Name}.";
            Assert.DoesNotContain(Set.Train, e => (e.Reply + e.Instruction).Contains(phrase, StringComparison.Ordinal) && RequestFollowing.HasWord(e.Reply + e.Instruction, c.Thing) && e.Cast == c);
        }
        Assert.Equal(14 * 18 * 15, StoryInstructions.AllCasts().Distinct().Count());
    }

    [Fact]
    public void The_set_is_deterministic_for_a_seed()
    {
        var again = StoryInstructions.Generate(2000, seed: 5);
        Assert.Equal(Set.Train, again.Train);
        Assert.Equal(Set.HeldOut, again.HeldOut);
        Assert.Equal(Set.HeldOutQuestions, again.HeldOutQuestions);
        var other = StoryInstructions.Generate(2000, seed: 6);
        Assert.NotEqual(Set.Train.Select(e => e.Instruction), other.Train.Select(e => e.Instruction));
        Assert.NotEqual(Set.HeldOutCasts.OrderBy(c => c.ToString()), other.HeldOutCasts.OrderBy(c => c.ToString()));
        // the held-out casts do not depend on how many training examples are made
        Assert.Equal(Set.HeldOut, StoryInstructions.Generate(10, seed: 5).HeldOut);
    }

    [Fact]
    public void Pretraining_stories_can_leave_out_casts_and_are_unchanged_otherwise()
    {
        // the corpus quickstart has always trained on (pinned: the same stories for the same seed as before)
        string text = StoryCorpus.Generate(20_000);
        Assert.Equal(20306, text.Length);
        Assert.Equal("7E0ADBB0EE2225A83C3850EE2E4B18F7BDA58CA98F5178CA10765BF74934528D", Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(text))));
        Assert.Equal(text, string.Concat(StoryCorpus.Stories(20_000)));
        var noFox = StoryInstructions.AllCasts().Where(c => c.Animal == "fox").ToHashSet();
        var stories = StoryCorpus.Stories(50_000, 3, noFox).ToList();
        Assert.True(stories.Sum(s => s.Length) >= 50_000);
        Assert.DoesNotContain(stories, s => s.Contains("fox", StringComparison.Ordinal));
        Assert.Contains(StoryCorpus.Stories(50_000, 3), s => s.Contains("fox", StringComparison.Ordinal));
    }

    [Fact]
    public void Jsonl_reads_back_as_prompt_completion_in_the_chat_layout_of_a_quill_checkpoint()
    {
        string path = Path.Combine(Path.GetTempPath(), $"quill-story-sft-{Guid.NewGuid():N}.jsonl");
        try
        {
            var examples = Set.Train.Take(20).Concat(Set.HeldOut.Take(5)).ToList();
            StoryInstructions.WriteJsonl(path, examples);
            var file = SftReader.Read(path);
            Assert.Equal(examples.Count, file.Examples.Count);
            var tok = CharTokenizer.Train(examples.SelectMany(e => new[] { e.Prompt, e.Reply }), CharTokenizer.DefaultEndOfText);
            var layout = new ChatLayout(tok, null, "gpt2", addBos: false);
            var renderer = new SftRenderer(tok, null, addBos: false);
            for (int i = 0; i < examples.Count; i++)
            {
                var read = file.Examples[i];
                Assert.Equal(SftFormat.PromptCompletion, read.Format);
                Assert.Equal("User: " + examples[i].Instruction + "\n\nAssistant:", read.Messages[0].Content);
                Assert.Equal(" " + examples[i].Reply, read.Messages[1].Content);
                // the prompt is exactly what `quill chat` / `quill serve` send for that user message
                int[] chatPrompt = layout.Encode([new ChatTurn("user", examples[i].Instruction)]);
                var rendered = renderer.Render(read);
                Assert.Equal(chatPrompt, rendered.Ids[..chatPrompt.Length]);
                Assert.DoesNotContain(true, rendered.Trained[..chatPrompt.Length]);
                Assert.Equal(tok.EosId, rendered.Ids[^1]);
                Assert.True(rendered.Trained[^1]);
            }
            Assert.Contains("\"animal\":", File.ReadAllText(path), StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void Bad_arguments_are_refused()
    {
        Assert.Throws<InvalidConfigException>(() => StoryInstructions.HeldOutCasts(14 * 18 * 15));
        Assert.Throws<InvalidConfigException>(() => StoryInstructions.Generate(10, questionShare: 1.5));
        Assert.Throws<ArgumentOutOfRangeException>(() => StoryCorpus.Compose(new Rng(1), null, 5));
    }
}
