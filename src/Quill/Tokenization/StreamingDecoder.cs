// Incremental detokenization for generation: each pushed id yields the text it completes. A token may end in the
// middle of a UTF-8 character (byte-level BPE, byte fallback); those bytes are held back until the character is
// complete, and only invalid sequences become U+FFFD. A token's bytes are taken as decode(prev, id) minus
// decode(prev), so families whose decoding depends on the neighbour (SentencePiece's leading space, WordPiece's
// "##" joins) stream exactly as a whole-sequence Decode would print.
using System.Text;

namespace Quill.Tokenization;

/// <summary>Turns a stream of token ids into text, never splitting a UTF-8 character.</summary>
public sealed class StreamingDecoder
{
    private readonly ITokenizer tokenizer;
    private readonly Decoder decoder = new UTF8Encoding(false, false).GetDecoder();
    private int previous = -1;

    public StreamingDecoder(ITokenizer tokenizer)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        this.tokenizer = tokenizer;
    }

    /// <summary>Adds one id; returns the text that is now complete (possibly empty).</summary>
    public string Push(int id)
    {
        byte[] bytes;
        if (previous < 0)
        {
            bytes = tokenizer.DecodeBytes([id]);
        }
        else
        {
            byte[] both = tokenizer.DecodeBytes([previous, id]);
            int prevLen = tokenizer.DecodeBytes([previous]).Length;
            bytes = both.AsSpan(Math.Min(prevLen, both.Length)).ToArray();
        }
        previous = id;
        return DecodeChunk(bytes, flush: false);
    }

    /// <summary>Ends the stream: held-back bytes of an unfinished character become U+FFFD.</summary>
    public string Flush()
    {
        previous = -1;
        return DecodeChunk([], flush: true);
    }

    private string DecodeChunk(byte[] bytes, bool flush)
    {
        var chars = new char[decoder.GetCharCount(bytes, flush) + 4];
        int n = decoder.GetChars(bytes, chars, flush);
        return new string(chars, 0, n);
    }
}
