// What one completion asks of generation: sampling settings (the inference Sampler's options), limits, stop
// conditions and logprob reporting. The caller validates the settings (the server checks the ranges OpenAI
// documents) before they get here. Does not handle: prompt text (requests carry token ids).

namespace Quill.Inference.Batching;

/// <summary>One sequence to generate.</summary>
public sealed record GenerationRequest
{
    /// <summary>Prompt token ids (non-empty).</summary>
    public required int[] Prompt { get; init; }

    /// <summary>Sampler settings; Seed should be set (the same seed and prompt give the same text).</summary>
    public SamplingOptions Sampling { get; init; } = new() { Seed = 0, PenaltyWindow = 0 };

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

/// <summary>A generated token as reported to clients: its text and bytes, log-probability and top alternatives.</summary>
public sealed record TokenChoice(int Id, string Token, byte[] Bytes, float Logprob, IReadOnlyList<TokenChoice> Top);
