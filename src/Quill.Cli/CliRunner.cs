// Runs a parsed command and turns a user's mistake (QuillException, a missing file, a full disk) into one line
// on stderr and a non-zero exit code. Bugs keep their stack trace.
using System.CommandLine;

namespace Quill.Cli;

/// <summary>Invokes the root command with Quill's error policy.</summary>
public static class CliRunner
{
    /// <summary>Exit code for a user's mistake.</summary>
    public const int UserError = 1;

    /// <summary>Exit code when the user stopped the work (Ctrl+C, SIGTERM).</summary>
    public const int Cancelled = 130;

    public static int Run(RootCommand root, string[] args)
    {
        ArgumentNullException.ThrowIfNull(root);
        var config = new InvocationConfiguration { EnableDefaultExceptionHandler = false };
        try
        {
            return root.Parse(args).Invoke(config);
        }
        catch (Exception ex) when (UserMessage(ex) is string message)
        {
            // a stop the user asked for is not an error: its line says where the work is
            bool stopped = Unwrap(ex) is OperationCanceledException;
            Console.Error.WriteLine(stopped ? message : "error: " + message);
            return stopped ? Cancelled : UserError;
        }
    }

    /// <summary>The one-line message for an exception caused by the user or the environment, or null for a bug.</summary>
    public static string? UserMessage(Exception ex)
    {
        ArgumentNullException.ThrowIfNull(ex);
        return Unwrap(ex) switch
        {
            QuillException q => OneLine(q.Message),
            Quill.Training.TrainingStoppedException s => OneLine(s.Message),
            OperationCanceledException => "cancelled",
            FileNotFoundException f => OneLine($"file not found: {f.FileName ?? f.Message}"),
            DirectoryNotFoundException d => OneLine(d.Message),
            UnauthorizedAccessException u => OneLine(u.Message),
            IOException io => OneLine(io.Message),
            _ => null,
        };
    }

    /// <summary>The one exception inside an AggregateException of one (nested), else ex itself.</summary>
    private static Exception Unwrap(Exception ex) => ex is AggregateException agg && agg.InnerExceptions.Count == 1 ? Unwrap(agg.InnerExceptions[0]) : ex;

    private static string OneLine(string s) => s.ReplaceLineEndings(" ").Trim();
}
