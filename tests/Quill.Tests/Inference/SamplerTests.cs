// The sampler's rules one by one (greedy, top-k, min-p, top-p, penalties, seeds, log-probabilities), the streaming
// stop strings held back until they can be ruled out (StopStringFilter, what the Generator uses).
using Quill.Inference;

namespace Quill.Tests.Inference;

public sealed class SamplerTests
{
    private static float[] Logits() => [0.1f, 2.0f, 1.5f, -1f, 1.9f, 0.0f];

    [Fact]
    public void Temperature_zero_is_argmax_first_maximum()
    {
        var s = new Sampler(new SamplingOptions { Temperature = 0 });
        Assert.Equal(1, s.Sample(Logits()));
        Assert.Equal(0, s.Sample(new float[] { 3f, 3f, 1f }));
    }

    [Fact]
    public void Same_seed_same_tokens_and_top_k_one_is_greedy()
    {
        var o = new SamplingOptions { Temperature = 1.5f, Seed = 42 };
        var a = new Sampler(o);
        var b = new Sampler(o);
        for (int i = 0; i < 50; i++) Assert.Equal(a.Sample(Logits()), b.Sample(Logits()));
        var k1 = new Sampler(new SamplingOptions { Temperature = 2f, TopK = 1, Seed = 3 });
        for (int i = 0; i < 20; i++) Assert.Equal(1, k1.Sample(Logits()));
    }

    [Fact]
    public void Top_k_min_p_and_top_p_only_draw_allowed_tokens()
    {
        var seen = new HashSet<int>();
        var k2 = new Sampler(new SamplingOptions { Temperature = 1f, TopK = 2, Seed = 1 });
        for (int i = 0; i < 300; i++) seen.Add(k2.Sample(Logits()));
        Assert.Equal(new HashSet<int> { 1, 4 }, seen);

        seen.Clear();
        // p(2.0) vs p(1.5): ratio e^-0.5 = 0.61 > 0.5 kept; p(0.1) ratio e^-1.9 = 0.15 dropped
        var minP = new Sampler(new SamplingOptions { Temperature = 1f, MinP = 0.5f, Seed = 2 });
        for (int i = 0; i < 300; i++) seen.Add(minP.Sample(Logits()));
        Assert.Equal(new HashSet<int> { 1, 2, 4 }, seen);

        seen.Clear();
        var topP = new Sampler(new SamplingOptions { Temperature = 1f, TopP = 0.5f, Seed = 3 });
        for (int i = 0; i < 300; i++) seen.Add(topP.Sample(Logits()));
        Assert.Equal(new HashSet<int> { 1, 4 }, seen); // the top token alone holds 0.35 < 0.5; the top two hold 0.67
    }

    [Fact]
    public void Penalties_push_down_repeated_tokens()
    {
        var rep = new Sampler(new SamplingOptions { Temperature = 0, RepetitionPenalty = 2f });
        Assert.Equal(4, rep.Sample(Logits(), [1])); // 2.0 / 2 = 1.0 < 1.9
        var freq = new Sampler(new SamplingOptions { Temperature = 0, FrequencyPenalty = 0.3f });
        Assert.Equal(4, freq.Sample(Logits(), [1, 1])); // 2.0 - 0.6
        Assert.Equal(1, freq.Sample(Logits(), [4, 4]));
        var pres = new Sampler(new SamplingOptions { Temperature = 0, PresencePenalty = 0.2f });
        Assert.Equal(4, pres.Sample(Logits(), [1]));
    }

    [Fact]
    public void Logprobs_are_log_softmax_with_sorted_alternatives()
    {
        var s = new Sampler(new SamplingOptions { Temperature = 0, TopLogprobs = 3 });
        var top = new List<TokenLogprob>();
        int id = s.Sample(Logits(), default, out float lp, top);
        double lse = Math.Log(Logits().Sum(x => Math.Exp(x)));
        Assert.Equal(1, id);
        Assert.Equal(2.0 - lse, lp, 4);
        Assert.Equal([1, 4, 2], top.Select(t => t.Id));
        Assert.True(top[0].Logprob >= top[1].Logprob && top[1].Logprob >= top[2].Logprob);
    }

    [Fact]
    public void Bad_options_name_the_flag()
    {
        Assert.Contains("--top-p", Assert.Throws<InvalidConfigException>(() => new Sampler(new SamplingOptions { TopP = 0 })).Message);
        Assert.Contains("--temperature", Assert.Throws<InvalidConfigException>(() => new Sampler(new SamplingOptions { Temperature = -1 })).Message);
    }

    [Fact]
    public void Stop_strings_are_held_back_then_cut()
    {
        string[] stops = ["<end>"];
        var filter = new StopStringFilter(stops);
        Assert.Equal("hello ", filter.Push("hello <e"));
        Assert.False(filter.Stopped);
        Assert.Equal("", filter.Push("nd> more"));
        Assert.True(filter.Stopped);
        filter = new StopStringFilter(stops);
        Assert.Equal("a <ex", filter.Push("a <ex"));
        Assert.False(filter.Stopped);
    }
}
