// Renders SFT examples to token ids with a per-token training mask (wave2-facts 1.3: torchtune's default
// train_on_assistant, TRL's completion-only loss for prompt-completion data).
// - A base with a chat template: the conversation goes through ChatTemplate.RenderTokens (its segments, special
//   tokens recognised, BOS when the model adds one); assistant turns (content and the template's end-of-turn
//   text) are trained, everything else masked. An Alpaca row becomes one user turn ("{instruction}" or
//   "{instruction}\n\n{input}") and one assistant turn.
// - A base without one: the pinned Alpaca layout (AlpacaLayout), the reply trained.
// - prompt/completion strings: raw text either way (TRL's standard form applies no template): the prompt masked, the
//   completion trained.
// The model must learn to stop, so every trained reply ends with a stop token that is trained too: the template's
// end-of-turn token when the reply's trained tokens already hold one (<|im_end|>, <|eot_id|>, </s>, ...: a special
// token among the template's stop strings, the EOS or an extra stop id), else the tokenizer's EOS is appended.
// A tokenizer without EOS (char, byte) gets no end token (EndOfReplyId is -1 and callers warn).
// Text is encoded so that the prompt's ids are what inference encodes: the Alpaca and raw layouts encode the text
// run so far plus the new piece and keep the new ids when the run's ids are a prefix (TRL does the same check), else
// encode the piece alone. TrainOnPrompt trains every token.
// Does not handle: truncation (SftDataset), templates other than Tokenization.ChatTemplates.
using Quill.Tokenization;
using Quill.Tokenization.ChatTemplates;

namespace Quill.Data.Sft;

/// <summary>Turns SFT examples into token ids and a training mask for one tokenizer and layout.</summary>
public sealed class SftRenderer
{
    private readonly ITokenizer tokenizer;
    private readonly ChatTemplate? template;
    private readonly bool addBos;
    private readonly HashSet<int> stopIds = [];

    /// <param name="tokenizer">The base model's tokenizer.</param>
    /// <param name="template">The base's chat template, or null for the pinned Alpaca layout.</param>
    /// <param name="addBos">Start each example with BOS (as the base's prompts do).</param>
    /// <param name="extraStopIds">Ids besides EOS that end a turn (InferenceModel.ExtraStopIds).</param>
    public SftRenderer(ITokenizer tokenizer, ChatTemplate? template, bool addBos, IEnumerable<int>? extraStopIds = null)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        this.tokenizer = tokenizer;
        this.template = template;
        this.addBos = addBos && tokenizer.BosId >= 0;
        if (tokenizer.EosId >= 0) stopIds.Add(tokenizer.EosId);
        foreach (int id in extraStopIds ?? []) stopIds.Add(id);
        foreach (string s in template?.Stop ?? [])
        {
            if (tokenizer.SpecialTokens.TryGetValue(s, out int id)) stopIds.Add(id);
        }
    }

    /// <summary>The layout's name: the chat template's, or the pinned Alpaca layout's.</summary>
    public string Layout => template?.Name ?? AlpacaLayout.Name;

    /// <summary>The id appended after a reply without an end-of-turn token (the tokenizer's EOS), or -1.</summary>
    public int EndOfReplyId => tokenizer.EosId;

    /// <summary>The example's ids and mask: replies (and their end token) trained; with trainOnPrompt every token.</summary>
    public SftTokens Render(SftExample example, bool trainOnPrompt = false)
    {
        ArgumentNullException.ThrowIfNull(example);
        var b = example.Format == SftFormat.PromptCompletion ? Raw(example)
            : template != null ? Templated(example, template)
            : Alpaca(example);
        bool[] trained = b.Mask.ToArray();
        if (trainOnPrompt) Array.Fill(trained, true);
        return new SftTokens(example.Line, b.Ids.ToArray(), trained);
    }

    private Builder Raw(SftExample e)
    {
        var b = Start();
        b.Text(e.Messages[0].Content, false);
        Reply(b, e.Messages[1].Content);
        return b;
    }

    private Builder Alpaca(SftExample e)
    {
        var b = Start();
        var turns = e.Messages;
        int i = 0;
        string? system = turns[0].Role == "system" ? turns[i++].Content : null;
        bool first = true;
        for (; i < turns.Count; i += 2)
        {
            string prompt = !first ? AlpacaLayout.NextTurn(turns[i].Content)
                : system != null ? system + "\n\n" + AlpacaLayout.Block(turns[i].Content)
                : AlpacaLayout.Prompt(turns[i].Content, e.Input);
            first = false;
            b.Text(prompt, false);
            Reply(b, turns[i + 1].Content);
        }
        return b;
    }

    private Builder Templated(SftExample e, ChatTemplate t)
    {
        var messages = e.Messages;
        if (e.Format == SftFormat.Alpaca && !string.IsNullOrEmpty(e.Input))
            messages = [new ChatMessage("user", messages[0].Content + "\n\n" + e.Input), messages[1]];
        var r = t.RenderTokens(tokenizer, messages, addGenerationPrompt: false, addBos: addBos);
        var b = new Builder(tokenizer);
        for (int i = 0; i < r.Ids.Length; i++)
        {
            b.Token(r.Ids[i], r.Mask[i]);
            bool replyEnds = r.Mask[i] && (i + 1 == r.Ids.Length || !r.Mask[i + 1]);
            if (replyEnds && tokenizer.EosId >= 0 && !EndsTurn(r, i)) b.Token(tokenizer.EosId, true);
        }
        return b;
    }

    /// <summary>Whether the trained run ending at index end holds a stop token.</summary>
    private bool EndsTurn(ChatTokens r, int end)
    {
        for (int i = end; i >= 0 && r.Mask[i]; i--)
        {
            if (stopIds.Contains(r.Ids[i])) return true;
        }
        return false;
    }

    private Builder Start()
    {
        var b = new Builder(tokenizer);
        if (addBos) b.Token(tokenizer.BosId, false);
        return b;
    }

    private void Reply(Builder b, string reply)
    {
        b.Text(reply, true);
        if (tokenizer.EosId >= 0) b.Token(tokenizer.EosId, true);
    }

    /// <summary>Ids and mask built from text pieces and single tokens; a token ends the current text run.</summary>
    private sealed class Builder(ITokenizer tokenizer)
    {
        private string run = "";
        private int runStart;

        public List<int> Ids { get; } = [];

        public List<bool> Mask { get; } = [];

        public void Token(int id, bool trained)
        {
            Ids.Add(id);
            Mask.Add(trained);
            run = "";
            runStart = Ids.Count;
        }

        public void Text(string text, bool trained)
        {
            if (text.Length == 0) return;
            int have = Ids.Count - runStart;
            int[] full = tokenizer.Encode(run + text);
            int[] added;
            if (full.Length >= have && full.AsSpan(0, have).SequenceEqual(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(Ids)[runStart..]))
            {
                added = full[have..];
            }
            else
            {
                added = tokenizer.Encode(text);
                run = "";
                runStart = Ids.Count;
            }
            Ids.AddRange(added);
            for (int i = 0; i < added.Length; i++) Mask.Add(trained);
            run += text;
        }
    }
}
