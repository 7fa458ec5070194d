namespace Quill.Tokenization;


internal static class HfTokenizerJson
{
    public static ITokenizer Load(string path, System.Text.Json.Nodes.JsonObject obj) => throw new InvalidFileException($"{path}: tokenizer.json is not supported yet.");
}

