using System.Text;
using Quill.Data.Cleaning;

namespace Quill.Tests.Data.Cleaning;

public class JsonlFieldsTests
{
    private static (SkipRecord? Skip, string Text, string? Id) Extract(string line)
    {
        var raw = new RawDocument("f.jsonl:1", Encoding.UTF8.GetBytes(line), RawKind.JsonLine);
        SkipRecord? skip = JsonlFields.Extract(raw, new InputConfig(), out string text, out string? id);
        return (skip, text, id);
    }

    [Theory]
    [InlineData("""{"id": 7, "meta": {"text": "nested"}, "text": "hello"}""", "hello", "7")]
    [InlineData("""{"text": "caf\u00e9 \ud83d\ude00", "id": "a"}""", "café 😀", "a")]
    [InlineData("""{"text": "x", "id": [1]}""", "x", null)]
    public void Text_and_id_are_read(string line, string text, string? id)
    {
        var r = Extract(line);
        Assert.Null(r.Skip);
        Assert.Equal(text, r.Text);
        Assert.Equal(id, r.Id);
    }

    [Theory]
    [InlineData("[1, 2]", "invalid_json")]
    [InlineData("""{"text": "a"} trailing""", "invalid_json")]
    [InlineData("""{"text": "unterminated""", "invalid_json")]
    [InlineData("""{"body": "a"}""", "missing_text_field")]
    [InlineData("""{"text": null}""", "text_field_not_string")]
    [InlineData("""{"text": {"en": "a"}}""", "text_field_not_string")]
    public void Bad_lines_give_a_reason(string line, string reason)
    {
        Assert.Equal(reason, Extract(line).Skip?.Reason);
    }
}
