// Questions about a given story ("{story} Who found the shell?" -> "Ben."): the model answers greedily in its chat
// layout (GreedyAnswers) and an answer counts when it is exactly the expected one (surrounding whitespace aside) and
// stopped: the short answers of Data.StoryInstructions have one right spelling, so exact match is the fair test.
// Does not handle: answers that are right in other words ("It was Ben."), questions without a known answer.
using Quill.Data;
using Quill.Inference;

namespace Quill.Evaluation;

/// <summary>One answer to a question and whether it is right.</summary>
/// <param name="Question">The question (Instruction) and its expected answer (Reply).</param>
/// <param name="Answer">What the model said.</param>
/// <param name="Stopped">Whether it ended with end-of-sequence within the limit.</param>
public sealed record JudgedAnswer(StoryInstruction Question, string Answer, bool Stopped)
{
    /// <summary>Exactly the expected answer, then a stop.</summary>
    public bool Correct => Stopped && Answer.Trim() == Question.Reply;
}

/// <summary>The judged answers and their rate.</summary>
public sealed record StoryQuestionsReport(IReadOnlyList<JudgedAnswer> Answers)
{
    /// <summary>Number of right answers.</summary>
    public int CorrectCount => Answers.Count(a => a.Correct);

    /// <summary>Fraction of right answers (0 when there are none).</summary>
    public double Score => Answers.Count == 0 ? 0 : (double)CorrectCount / Answers.Count;

    /// <summary>One line: "answered 190/200 (95.0%) exactly".</summary>
    public string Describe() => string.Create(System.Globalization.CultureInfo.InvariantCulture, $"answered {CorrectCount}/{Answers.Count} ({Score * 100:F1}%) exactly");
}

/// <summary>Scores answers to questions about stories.</summary>
public static class StoryQuestions
{
    /// <summary>Judges the answers answer gives (text, stopped) to each question.</summary>
    public static StoryQuestionsReport Evaluate(IReadOnlyList<StoryInstruction> questions, Func<StoryInstruction, (string Answer, bool Stopped)> answer)
    {
        ArgumentNullException.ThrowIfNull(questions);
        ArgumentNullException.ThrowIfNull(answer);
        return new StoryQuestionsReport([.. questions.Select(q =>
        {
            var (text, stopped) = answer(q);
            return new JudgedAnswer(q, text, stopped);
        })]);
    }

    /// <summary>Asks the model every question (greedy, batched, in its chat layout) and judges the answers.</summary>
    public static StoryQuestionsReport Evaluate(InferenceModel model, IReadOnlyList<StoryInstruction> questions, AnswerOptions? options = null,
        IProgress<int>? progress = null, CancellationToken cancel = default)
    {
        ArgumentNullException.ThrowIfNull(questions);
        var answers = GreedyAnswers.Answer(model, [.. questions.Select(q => q.Instruction)], options ?? new AnswerOptions { MaxTokens = 32 }, progress, cancel);
        return new StoryQuestionsReport([.. questions.Select((q, i) => new JudgedAnswer(q, answers[i].Text, answers[i].Stopped))]);
    }
}
