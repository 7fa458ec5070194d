// The user-facing error type. A user's mistake (a bad file, a bad field, a bad flag) raises a QuillException whose
// message names the file or field and says how to fix it; the CLI prints that message on one line and exits
// non-zero. Bugs are not QuillExceptions: they keep their stack traces.
namespace Quill;

/// <summary>A user's mistake: the message names the file or field at fault and the fix.</summary>
public class QuillException : Exception
{
    public QuillException() { }

    public QuillException(string message) : base(message) { }

    public QuillException(string message, Exception innerException) : base(message, innerException) { }
}

/// <summary>A configuration (model config, training config, CLI flag) that cannot be honoured.</summary>
public class InvalidConfigException : QuillException
{
    public InvalidConfigException() { }

    public InvalidConfigException(string message) : base(message) { }

    public InvalidConfigException(string message, Exception innerException) : base(message, innerException) { }
}

/// <summary>A file that is missing, unreadable, truncated or not in the expected format.</summary>
public class InvalidFileException : QuillException
{
    public InvalidFileException() { }

    public InvalidFileException(string message) : base(message) { }

    public InvalidFileException(string message, Exception innerException) : base(message, innerException) { }
}
