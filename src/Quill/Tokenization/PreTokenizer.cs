// Pre-tokenization: cuts text into chunks that BPE encodes independently (merges never cross a chunk edge).
// A pre-tokenizer is a sequence of regexes: the first splits the text, each later one splits every chunk again;
// text between matches is kept as its own chunk (HF's Split "isolated" behaviour), so no text is ever dropped.
// .NET regexes work on UTF-16 code units; to give \p{L}, [^...]? and friends code-point semantics, text holding
// surrogate pairs is matched on a proxy string in which each astral character is replaced by a BMP character of
// the same Unicode category (so literal astral ranges inside a pattern, as in deepseek-llm's, do not match).
// The named patterns (gpt2, cl100k, o200k, llama3, the llama.cpp "pre" types) live in PreTokenizerPatterns.
using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace Quill.Tokenization;

/// <summary>Splits text into chunks (start, length in UTF-16 units) with one or more regexes applied in turn.</summary>
public sealed class PreTokenizer
{
    private static readonly char[] Proxies = BuildProxies();
    private readonly Regex[] regexes;
    private readonly FastPattern? fast;

    /// <summary>Creates a pre-tokenizer from regex patterns applied in sequence (at least one).</summary>
    public PreTokenizer(IReadOnlyList<string> patterns, string? name = null)
    {
        ArgumentNullException.ThrowIfNull(patterns);
        if (patterns.Count == 0) throw new InvalidConfigException("pre-tokenizer: give at least one regex pattern.");
        Patterns = patterns.ToArray();
        Name = name;
        if (patterns.Count == 1)
        {
            fast = patterns[0] switch
            {
                PreTokenizerPatterns.Gpt2 => FastPattern.Gpt2,
                PreTokenizerPatterns.Cl100k or PreTokenizerPatterns.Llama3 => FastPattern.Cl100k,
                PreTokenizerPatterns.O200k => FastPattern.O200k,
                _ => null,
            };
        }
        regexes = new Regex[patterns.Count];
        for (int i = 0; i < regexes.Length; i++)
        {
            try
            {
                // The fast path needs no compiled regex: keep the reference twin interpreted (cheap to build).
                regexes[i] = new Regex(patterns[i], (fast == null ? RegexOptions.Compiled : RegexOptions.None) | RegexOptions.CultureInvariant);
            }
            catch (ArgumentException ex)
            {
                throw new InvalidConfigException($"pre-tokenizer pattern is not a valid regex ({ex.Message}): {patterns[i]}", ex);
            }
        }
    }

    /// <summary>The regex patterns in the order they are applied.</summary>
    public IReadOnlyList<string> Patterns { get; }

    /// <summary>The well-known name ("gpt2", "cl100k", ...) when built from one, else null.</summary>
    public string? Name { get; }

    /// <summary>True when a hand-written splitter replaces the regexes (gpt2, cl100k, llama3, o200k).</summary>
    public bool HasFastPath => fast != null;

    /// <summary>Fast path only: the end of the chunk starting at i, without materializing a chunk list.</summary>
    internal int NextChunkEnd(ReadOnlySpan<char> text, int i) => FastPreTokenizer.Next(fast!.Value, text, i);

    /// <summary>Appends the chunks of text as (start, length) pairs, in order, covering all of it.</summary>
    public void Split(string text, List<(int Start, int Length)> chunks)
    {
        ArgumentNullException.ThrowIfNull(text);
        ArgumentNullException.ThrowIfNull(chunks);
        if (text.Length == 0) return;
        if (fast is FastPattern f)
        {
            FastPreTokenizer.Split(f, text, chunks);
            return;
        }
        SplitWithRegex(text, chunks);
    }

    /// <summary>The regex path (the reference twin of the fast splitters).</summary>
    internal void SplitWithRegex(string text, List<(int Start, int Length)> chunks)
    {
        if (text.Length == 0) return;
        if (text.AsSpan().IndexOfAnyInRange('\uD800', '\uDFFF') < 0)
        {
            SplitCore(text, chunks);
            return;
        }
        // Astral characters: match on a one-unit-per-code-point proxy, then map offsets back.
        var proxy = new StringBuilder(text.Length);
        var offsets = new List<int>(text.Length + 1);
        for (int i = 0; i < text.Length;)
        {
            offsets.Add(i);
            if (char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
            {
                var cat = CharUnicodeInfo.GetUnicodeCategory(char.ConvertToUtf32(text[i], text[i + 1]));
                proxy.Append(Proxies[(int)cat]);
                i += 2;
            }
            else
            {
                proxy.Append(text[i]);
                i++;
            }
        }
        offsets.Add(text.Length);
        int first = chunks.Count;
        SplitCore(proxy.ToString(), chunks);
        for (int c = first; c < chunks.Count; c++)
        {
            var (s, l) = chunks[c];
            chunks[c] = (offsets[s], offsets[s + l] - offsets[s]);
        }
    }

    /// <summary>The chunks as strings (convenient for tests and inspection).</summary>
    public List<string> SplitToStrings(string text)
    {
        var chunks = new List<(int Start, int Length)>();
        Split(text, chunks);
        return chunks.Select(c => text.Substring(c.Start, c.Length)).ToList();
    }

    private void SplitCore(string text, List<(int Start, int Length)> chunks)
    {
        int first = chunks.Count;
        AddMatches(regexes[0], text, 0, text.Length, chunks);
        for (int r = 1; r < regexes.Length; r++)
        {
            var pieces = chunks.GetRange(first, chunks.Count - first);
            chunks.RemoveRange(first, chunks.Count - first);
            foreach (var (s, l) in pieces) AddMatches(regexes[r], text, s, l, chunks);
        }
    }

    private static void AddMatches(Regex regex, string text, int start, int length, List<(int Start, int Length)> chunks)
    {
        int pos = 0;
        foreach (ValueMatch m in regex.EnumerateMatches(text.AsSpan(start, length)))
        {
            if (m.Length == 0) continue;
            if (m.Index > pos) chunks.Add((start + pos, m.Index - pos));
            chunks.Add((start + m.Index, m.Length));
            pos = m.Index + m.Length;
        }
        if (pos < length) chunks.Add((start + pos, length - pos));
    }

    private static char[] BuildProxies()
    {
        var proxies = new char[32];
        var found = new bool[32];
        for (int c = 0x100; c < 0x10000; c++)
        {
            if (c is >= 0xD800 and <= 0xDFFF) continue;
            int cat = (int)CharUnicodeInfo.GetUnicodeCategory((char)c);
            if (!found[cat])
            {
                found[cat] = true;
                proxies[cat] = (char)c;
            }
        }
        for (int i = 0; i < 32; i++) if (!found[i]) proxies[i] = '\uE000';
        return proxies;
    }
}
