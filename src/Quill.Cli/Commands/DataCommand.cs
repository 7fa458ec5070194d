// `quill data`: the parent of the data verbs (clean, fetch). Each verb lives in its own file.
using System.CommandLine;

namespace Quill.Cli.Commands;

internal static class DataCommand
{
    public static Command Create()
    {
        var cmd = new Command("data", "Prepare training text: clean and deduplicate corpora, download well-known datasets.");
        cmd.Add(DataCleanCommand.Create());
        cmd.Add(DataFetchCommand.Create());
        cmd.Add(DataBenchCommand.Create());
        return cmd;
    }

}
