// The preference win rate of the storyteller (issue 12): the fraction of greedy replies to the held-out story
// requests that have the property Data.StoryPreferences' chosen replies have: the requested animal and name (as
// RequestFollowing judges them), "The end." as the last words, and then the stop. Read from a RequestFollowingReport,
// so one greedy pass gives both the win rate and request following.
using Quill.Data;

namespace Quill.Evaluation;

/// <summary>Counts replies with the chosen property of StoryPreferences.</summary>
public static class StoryPreferenceWinRate
{
    /// <summary>Whether a judged reply has the chosen property: it followed its request and its last words are "The end.".</summary>
    public static bool Wins(JudgedReply reply)
    {
        ArgumentNullException.ThrowIfNull(reply);
        return reply.Followed && reply.Reply.TrimEnd().EndsWith(StoryPreferences.Ending, StringComparison.Ordinal);
    }

    /// <summary>The fraction of the report's replies that win (0 when there are none).</summary>
    public static double Of(RequestFollowingReport report)
    {
        ArgumentNullException.ThrowIfNull(report);
        return report.Replies.Count == 0 ? 0 : (double)report.Replies.Count(Wins) / report.Replies.Count;
    }

    /// <summary>One line: "win rate 183/200 (91.5%)".</summary>
    public static string Describe(RequestFollowingReport report)
    {
        ArgumentNullException.ThrowIfNull(report);
        return string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{report.Replies.Count(Wins)}/{report.Replies.Count} ({Of(report) * 100:F1}%)");
    }
}
