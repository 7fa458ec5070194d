// The sampler's rules one by one (greedy, top-k, min-p, top-p, penalties, seeds, log-probabilities), that it never
// fails on odd settings (issue 19: temperature 1e-45 with top_p 0.9 threw IndexOutOfRangeException) and refuses
// NaN / Inf logits with NonFiniteLogitsException, the streaming stop strings held back until they can be ruled out (StopStringFilter, what the Generator uses).
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

    [Theory]
    [InlineData(1e-45f, 0.9f, 0, 0f)]
    [InlineData(1e-45f, 1f, 0, 0f)]
    [InlineData(1e-38f, 0.5f, 3, 0.1f)]
    [InlineData(1e-40f, 0.9f, 0, 0f)]
    public void A_tiny_temperature_is_greedy(float temperature, float topP, int topK, float minP)
    {
        var s = new Sampler(new SamplingOptions { Temperature = temperature, TopP = topP, TopK = topK, MinP = minP, Seed = 9 });
        float[] large = [120f, 119.99f, -50f, 3f];
        float[] negative = [-3e30f, -2e30f, float.NegativeInfinity, -4e30f];
        for (int i = 0; i < 20; i++)
        {
            Assert.Equal(1, s.Sample(Logits()));
            Assert.Equal(0, s.Sample(large));
            Assert.Equal(1, s.Sample(negative));
        }
    }

    [Fact]
    public void A_top_p_that_keeps_nothing_takes_the_most_likely_token()
    {
        // a flat distribution: every p is 1/V, below run.c's cutoff (1 - top_p) / (V - 1) when top_p is tiny
        var s = new Sampler(new SamplingOptions { Temperature = 1f, TopP = float.Epsilon, Seed = 4 });
        Assert.Equal(0, s.Sample(new float[8]));
        var one = new Sampler(new SamplingOptions { Temperature = 1f, TopP = 0.5f, Seed = 4 });
        Assert.Equal(0, one.Sample(new float[1]));
    }

    [Fact]
    public void Non_finite_logits_raise_a_quill_exception_and_masked_tokens_are_fine()
    {
        foreach (float temperature in new[] { 0f, 1e-45f, 0.8f })
        {
            var s = new Sampler(new SamplingOptions { Temperature = temperature, TopP = 0.9f, Seed = 1 });
            var nan = Assert.Throws<NonFiniteLogitsException>(() => s.Sample(new[] { 1f, float.NaN, 2f }));
            Assert.Contains("NaN logit (token id 1)", nan.Message, StringComparison.Ordinal);
            Assert.Contains("+Infinity", Assert.Throws<NonFiniteLogitsException>(() => s.Sample(new[] { float.PositiveInfinity, 0f })).Message, StringComparison.Ordinal);
            Assert.Contains("every one of its 2 tokens", Assert.Throws<NonFiniteLogitsException>(() => s.Sample(new[] { float.NegativeInfinity, float.NegativeInfinity })).Message, StringComparison.Ordinal);
            Assert.Equal(1, s.Sample(new[] { float.NegativeInfinity, 5f, float.NegativeInfinity }));
        }
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
