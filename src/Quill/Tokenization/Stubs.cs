namespace Quill.Tokenization;

internal static class SentencePieceModelFile
{
    public static ITokenizer Load(string path) => throw new InvalidFileException($"{path}: SentencePiece .model files are not supported yet.");
}

internal static class Llama2cTokenizerFile
{
    public static bool LooksLike(byte[] head) => false;

    public static ITokenizer Load(string path) => throw new InvalidFileException($"{path}: llama2.c tokenizer.bin is not supported yet.");
}

internal static class HfTokenizerJson
{
    public static ITokenizer Load(string path, System.Text.Json.Nodes.JsonObject obj) => throw new InvalidFileException($"{path}: tokenizer.json is not supported yet.");
}

internal static class GgufVocab
{
    public static ITokenizer Load(string path) => throw new InvalidFileException($"{path}: GGUF vocabularies are not supported yet.");
}
