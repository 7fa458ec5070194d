using Quill.Cli;

namespace Quill.Tests;

public class CliRunnerTests
{
    [Fact]
    public void User_errors_become_one_line_and_bugs_do_not()
    {
        Assert.Equal("width must divide heads; fix it", CliRunner.UserMessage(new QuillException("width must divide heads;\nfix it")));
        Assert.Null(CliRunner.UserMessage(new NullReferenceException("bug")));
        Assert.Equal("cancelled", CliRunner.UserMessage(new OperationCanceledException()));
        Assert.Equal("stopped at step 3 of 9; the completed steps are saved in run/checkpoint",
            CliRunner.UserMessage(new Quill.Training.TrainingStoppedException(3, 9, "run/checkpoint", CancellationToken.None)));
    }
}
