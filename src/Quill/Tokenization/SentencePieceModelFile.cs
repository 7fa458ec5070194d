// SentencePiece .model files: a protobuf ModelProto read with a small hand-written wire-format reader. Fields used:
// pieces (1: piece 1, score 2, type 3), trainer_spec (2: model_type 3, byte_fallback 35, unk_id 40, bos_id 41,
// eos_id 42), normalizer_spec (3: precompiled_charsmap 2, add_dummy_prefix 3, remove_extra_whitespaces 4,
// escape_whitespaces 5). Everything else is skipped. WORD and CHAR models are rejected.
using System.Buffers.Binary;
using System.Text;

namespace Quill.Tokenization;

/// <summary>Reads SentencePiece .model (protobuf) files.</summary>
public static class SentencePieceModelFile
{
    public static SentencePieceTokenizer Load(string path)
    {
        byte[] data = File.ReadAllBytes(path);
        try
        {
            return Parse(data, path);
        }
        catch (IndexOutOfRangeException ex)
        {
            throw new InvalidFileException($"{path}: truncated or corrupt SentencePiece model.", ex);
        }
        catch (ArgumentOutOfRangeException ex)
        {
            throw new InvalidFileException($"{path}: truncated or corrupt SentencePiece model.", ex);
        }
    }

    private static SentencePieceTokenizer Parse(byte[] data, string path)
    {
        var pieces = new List<string>();
        var scores = new List<float>();
        var types = new List<PieceType>();
        int modelType = 1, unkId = 0, bosId = 1, eosId = 2;
        bool byteFallback = false, addDummy = true, removeExtra = true, escape = true;
        byte[]? charsmap = null;
        var r = new Reader(data, 0, data.Length, path);
        while (r.More)
        {
            var (field, wire) = r.Tag();
            if (field == 1 && wire == 2)
            {
                var p = r.Sub();
                string piece = "";
                float score = 0;
                int type = 1;
                while (p.More)
                {
                    var (f, w) = p.Tag();
                    if (f == 1 && w == 2) piece = Encoding.UTF8.GetString(p.Bytes());
                    else if (f == 2 && w == 5) score = p.Fixed32Float();
                    else if (f == 3 && w == 0) type = (int)p.Varint();
                    else p.Skip(w);
                }
                if (type is < 1 or > 6) throw new InvalidFileException($"{path}: piece {pieces.Count} has unknown type {type}.");
                pieces.Add(piece);
                scores.Add(score);
                types.Add((PieceType)type);
            }
            else if (field == 2 && wire == 2)
            {
                var t = r.Sub();
                while (t.More)
                {
                    var (f, w) = t.Tag();
                    if (w == 0 && f is 3 or 35 or 40 or 41 or 42)
                    {
                        long v = (long)t.Varint();
                        switch (f)
                        {
                            case 3: modelType = (int)v; break;
                            case 35: byteFallback = v != 0; break;
                            case 40: unkId = (int)v; break;
                            case 41: bosId = (int)v; break;
                            case 42: eosId = (int)v; break;
                        }
                    }
                    else
                    {
                        t.Skip(w);
                    }
                }
            }
            else if (field == 3 && wire == 2)
            {
                var nsp = r.Sub();
                while (nsp.More)
                {
                    var (f, w) = nsp.Tag();
                    if (f == 2 && w == 2) charsmap = nsp.Bytes();
                    else if (f == 3 && w == 0) addDummy = nsp.Varint() != 0;
                    else if (f == 4 && w == 0) removeExtra = nsp.Varint() != 0;
                    else if (f == 5 && w == 0) escape = nsp.Varint() != 0;
                    else nsp.Skip(w);
                }
            }
            else
            {
                r.Skip(wire);
            }
        }
        if (pieces.Count == 0) throw new InvalidFileException($"{path}: SentencePiece model holds no pieces.");
        if (modelType is not (1 or 2))
            throw new InvalidFileException($"{path}: SentencePiece model type {modelType} is not supported (only unigram=1 and BPE=2).");
        // unk is required (SentencePiece refuses to train without one); bos / eos may be -1 (disabled), nothing else
        // outside the pieces: an id past the end would come out of encode as -1 or index past the tables.
        if (unkId < 0 || unkId >= pieces.Count)
            throw new InvalidFileException($"{path}: unk_id {unkId} is outside the {pieces.Count} pieces (0..{pieces.Count - 1}); the model is corrupt.");
        foreach (var (name, id) in new[] { ("bos_id", bosId), ("eos_id", eosId) })
        {
            if (id < -1 || id >= pieces.Count)
                throw new InvalidFileException($"{path}: {name} {id} is outside the {pieces.Count} pieces (0..{pieces.Count - 1}, or -1 for none); the model is corrupt.");
        }
        var normalizer = new SentencePieceNormalizer(charsmap, addDummy, removeExtra, escape);
        var tok = new SentencePieceTokenizer(pieces, scores, types, (SentencePieceModelKind)modelType, normalizer, byteFallback,
                                             unkId);
        tok.BosId = bosId;
        tok.EosId = eosId;
        return tok;
    }

    private struct Reader
    {
        private readonly byte[] data;
        private readonly int end;
        private readonly string path;
        private int pos;

        public Reader(byte[] data, int pos, int end, string path)
        {
            this.data = data;
            this.pos = pos;
            this.end = end;
            this.path = path;
        }

        public readonly bool More => pos < end;

        public (int Field, int Wire) Tag()
        {
            ulong t = Varint();
            return ((int)(t >> 3), (int)(t & 7));
        }

        public ulong Varint()
        {
            ulong v = 0;
            for (int shift = 0; shift < 64; shift += 7)
            {
                if (pos >= end) throw new InvalidFileException($"{path}: truncated protobuf varint.");
                byte b = data[pos++];
                v |= (ulong)(b & 0x7F) << shift;
                if (b < 0x80) return v;
            }
            throw new InvalidFileException($"{path}: malformed protobuf varint.");
        }

        public float Fixed32Float()
        {
            if (pos + 4 > end) throw new InvalidFileException($"{path}: truncated protobuf field.");
            float f = BinaryPrimitives.ReadSingleLittleEndian(data.AsSpan(pos));
            pos += 4;
            return f;
        }

        public byte[] Bytes()
        {
            int len = Length();
            byte[] b = data.AsSpan(pos, len).ToArray();
            pos += len;
            return b;
        }

        public Reader Sub()
        {
            int len = Length();
            var sub = new Reader(data, pos, pos + len, path);
            pos += len;
            return sub;
        }

        public void Skip(int wire)
        {
            switch (wire)
            {
                case 0: Varint(); break;
                case 1: pos += 8; break;
                case 2:
                    int len = Length();
                    pos += len;
                    break;
                case 5: pos += 4; break;
                default: throw new InvalidFileException($"{path}: unsupported protobuf wire type {wire}; is this a SentencePiece .model?");
            }
            if (pos > end) throw new InvalidFileException($"{path}: truncated protobuf field.");
        }

        private int Length()
        {
            ulong len = Varint();
            if (len > (ulong)(end - pos)) throw new InvalidFileException($"{path}: protobuf field length {len} runs past the end of the data.");
            return (int)len;
        }
    }
}
