// What one completion asks of generation: sampling settings, limits, stop conditions and logprob reporting.
// Validated by the API layer (ranges as OpenAI documents them) before they get here.
namespace Quill.Server.Generation;

/// <summary>Sampling settings of one sequence. Temperature 0 is greedy.</summary>
public sealed record SamplingParams
{
    public float Temperature { get; init; } = 1f;

    /// <summary>Nucleus: keep the most likely tokens whose probabilities sum to at least TopP (1 = all).</summary>
    public float TopP { get; init; } = 1f;

    /// <summary>Keep the K most likely tokens (0 = all). An extension to OpenAI's parameters.</summary>
    public int TopK { get; init; }

    /// <summary>Drop tokens less likely than MinP times the most likely one (0 = off). An extension.</summary>
    public float MinP { get; init; }

    /// <summary>Subtracted from the logit of every token already generated (OpenAI: -2 .. 2).</summary>
    public float PresencePenalty { get; init; }

    /// <summary>Subtracted once per earlier occurrence of a token in the completion (OpenAI: -2 .. 2).</summary>
    public float FrequencyPenalty { get; init; }

    /// <summary>Seed of the sequence's own generator; the same seed and prompt give the same text.</summary>
    public ulong Seed { get; init; }
}

/// <summary>One sequence to generate.</summary>
public sealed record GenerationRequest
{
    /// <summary>Prompt token ids (non-empty).</summary>
    public required int[] Prompt { get; init; }

    public SamplingParams Sampling { get; init; } = new();

    /// <summary>Most tokens to generate; the context length caps it further.</summary>
    public int MaxTokens { get; init; } = int.MaxValue;

    /// <summary>Texts that end the completion; the stop text itself is not returned.</summary>
    public IReadOnlyList<string> StopStrings { get; init; } = [];

    /// <summary>Token ids that end the completion (EOS, end-of-turn); never returned as text.</summary>
    public IReadOnlySet<int> StopTokens { get; init; } = new HashSet<int>();

    /// <summary>Report each token's log-probability.</summary>
    public bool Logprobs { get; init; }

    /// <summary>Drop whitespace before the reply's first visible character (the plain chat layout).</summary>
    public bool TrimStart { get; init; }

    /// <summary>Alternatives reported per token (0 .. 20) when Logprobs is on.</summary>
    public int TopLogprobs { get; init; }
}

/// <summary>Why a sequence ended, as OpenAI names it.</summary>
public enum FinishReason
{
    /// <summary>A stop string or stop token (EOS).</summary>
    Stop,

    /// <summary>max_tokens or the context length.</summary>
    Length,

    /// <summary>The client went away or the server is shutting down.</summary>
    Cancelled,
}

/// <summary>A token with its log-probability and the most likely alternatives at its position.</summary>
public sealed record TokenLogprob(int Id, string Token, byte[] Bytes, float Logprob, IReadOnlyList<TokenLogprob> Top);
