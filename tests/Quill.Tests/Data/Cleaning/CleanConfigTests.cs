using Quill.Data.Cleaning;

namespace Quill.Tests.Data.Cleaning;

public class CleanConfigTests
{
    [Fact]
    public void Yaml_and_json_configs_set_fields_and_keep_defaults()
    {
        CleanConfig y = CleanConfig.Parse("""
            input:
              text_field: content
            quality:
              min_words: 10
              max_symbol_word_ratio: null
              disable: [line_punctuation]
            dedup:
              shingle_size: 3
              bands: 32
              threshold: 0.7
            pii:
              enabled: true
            """);
        Assert.Equal("content", y.Input.TextField);
        Assert.Equal(10, y.Quality.MinWords);
        Assert.Null(y.Quality.MaxSymbolWordRatio);
        Assert.Equal(["line_punctuation"], y.Quality.Disable);
        Assert.Equal(3, y.Dedup.ShingleSize);
        Assert.Equal(32, y.Dedup.Bands);
        Assert.True(y.Pii.Enabled);
        Assert.Equal(100_000, y.Quality.MaxWords); // default kept

        CleanConfig j = CleanConfig.Parse("""{"dedup": {"near": false, "threshold": 0.9}, "normalize": {"nfc": false}}""");
        Assert.False(j.Dedup.Near);
        Assert.Equal(0.9, j.Dedup.Threshold);
        Assert.False(j.Normalize.Nfc);
    }

    [Theory]
    [InlineData("dedup:\n  bands: 7\n", "dedup.bands")]
    [InlineData("dedup:\n  threshold: 1.5\n", "dedup.threshold")]
    [InlineData("quality:\n  disable: [no_such_filter]\n", "quality.disable")]
    [InlineData("input:\n  txt_split: words\n", "input.txt_split")]
    [InlineData("qualty:\n  min_words: 3\n", "line")]
    public void Bad_configs_name_the_key(string yaml, string key)
    {
        var ex = Assert.Throws<InvalidConfigException>(() => CleanConfig.Parse(yaml, "my.yaml"));
        Assert.Contains(key, ex.Message, StringComparison.Ordinal);
        Assert.Contains("my.yaml", ex.Message, StringComparison.Ordinal);
    }
}
