// Entry point of the `quill` command: builds the verb tree and runs it. Each verb lives in its own file under
// Commands/ and is registered here with one line.
using System.CommandLine;
using Quill.Cli;
using Quill.Cli.Commands;

var root = new RootCommand("Quill: build your own language model in .NET, end to end.");
root.Add(VersionCommand.Create());
root.Add(PrepareCommand.Create());
root.Add(TrainCommand.Create());
root.Add(FinetuneCommand.Create());
root.Add(FeedbackCommand.Create());
root.Add(SampleCommand.Create());
root.Add(QuickstartCommand.Create());
root.Add(BenchCommand.Create());
root.Add(TokenizerCommand.Create());
root.Add(DataCommand.Create());
root.Add(GenerateCommand.Create());
root.Add(ChatCommand.Create());
root.Add(ServeCommand.Create());
root.Add(EvalCommand.Create());
root.Add(PullCommand.Create());
root.Add(PullCommand.CreateList());
root.Add(PullCommand.CreateRemove());
root.Add(ExportCommand.Create());
root.Add(QuantizeCommand.Create());
root.Add(ImatrixCommand.Create());
return CliRunner.Run(root, args);
