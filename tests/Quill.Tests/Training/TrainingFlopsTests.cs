// The model FLOPs of a training step (TrainingFlops), the FMA peak loop (FmaPeak) and the share of the peak the
// training benchmarks report (PeakFraction): the matrix-product count against the weights a built model holds, the
// causal attention count against a pair-by-pair count, the loop's arithmetic, and the reported shares.
using System.Runtime.Intrinsics;
using Quill.Benchmarks;
using Quill.Kernels;
using Quill.Models;
using Quill.Training;

namespace Quill.Tests.Training;

public class TrainingFlopsTests
{
    public static TheoryData<string> Configs => new() { "gpt2-tied", "llama-gqa-untied", "llama-moe" };

    private static ModelConfig Config(string name) => name switch
    {
        "gpt2-tied" => new ModelConfig { Arch = "gpt2", VocabSize = 65, NLayer = 2, NHead = 4, NEmbd = 64, BlockSize = 32 },
        "llama-gqa-untied" => new ModelConfig { Arch = "llama", VocabSize = 100, NLayer = 3, NHead = 4, NKvHead = 2, NEmbd = 64, MlpHidden = 96, BlockSize = 32, TieEmbeddings = false },
        _ => new ModelConfig { Arch = "mixtral", VocabSize = 100, NLayer = 2, NHead = 4, NKvHead = 2, NEmbd = 64, MlpHidden = 48, BlockSize = 32, Experts = 4, ExpertsUsed = 4 },
    };

    [Theory]
    [MemberData(nameof(Configs))]
    public void Matrix_products_per_token_are_the_models_projection_weights_and_its_head(string name)
    {
        // Every weight of a projection matrix is one multiply-add per token; the head is the table when tied. (With
        // every expert chosen, the routed MLPs cost all their weights.)
        var config = Config(name);
        var model = LanguageModel.Create(config, 1);
        long weights = model.Parameters.Where(p => model.Parameters.KindOf(p) == ParameterKind.Matrix).Sum(p => (long)p.Length);
        if (config.Tied) weights += (long)config.VocabSize * config.NEmbd;
        Assert.Equal(weights, TrainingFlops.MatmulMacsPerToken(config));
    }

    [Fact]
    public void Routed_experts_count_only_the_experts_each_token_runs()
    {
        var all = Config("llama-moe");
        var two = Config("llama-moe");
        two.ExpertsUsed = 2;
        double expert = 3.0 * all.NEmbd * all.Hidden;
        Assert.Equal(all.NLayer * 2 * expert, TrainingFlops.MatmulMacsPerToken(all) - TrainingFlops.MatmulMacsPerToken(two));
    }

    [Fact]
    public void Causal_attention_counts_each_visible_query_key_pair_twice_per_head_dimension()
    {
        var m = Config("llama-gqa-untied");
        const int t = 7;
        double pairs = 0;
        for (int i = 0; i < t; i++)
            for (int j = 0; j < t; j++)
                if (j <= i) pairs++;
        Assert.Equal(m.NLayer * m.NHead * m.HeadDim * 2 * pairs, TrainingFlops.AttentionMacsPerSequence(m, t));
        // a step: 2 FLOPs per multiply-add, 3 passes (forward, and backward's two) for trained weights and attention
        double step = TrainingFlops.PerStep(m, 3, t);
        Assert.Equal(6 * (TrainingFlops.MatmulMacsPerToken(m) * 3 * t + TrainingFlops.AttentionMacsPerSequence(m, t) * 3), step);
        // frozen weights skip their own gradient: 4 FLOPs a weight, adapters 6
        double frozen = TrainingFlops.PerStepFrozen(m, 3, t, adapterMacsPerToken: 1000);
        Assert.Equal(step - 2 * TrainingFlops.MatmulMacsPerToken(m) * 3 * t + 6 * 1000 * 3 * t, frozen, 6);
    }

    [Fact]
    public void Lora_on_attention_counts_rank_times_in_plus_out_for_q_k_v_and_o()
    {
        var m = Config("llama-gqa-untied"); // q and o 64 x 64, k and v 64 x 32 (two kv heads of 16)
        Assert.Equal(3 * 8 * ((64 + 64) + 2 * (64 + 32) + (64 + 64)), TrainingFlops.AttentionLoraMacsPerToken(m, rank: 8));
    }

    [Fact]
    public void The_fma_loop_does_every_multiply_add_it_is_asked_for()
    {
        Assert.Equal(FmaPeak.Accumulators * FmaPeak.Lanes * 1000f, FmaPeak.Run(1000, 1f));
        Assert.Equal(0f, FmaPeak.Run(0, 1f));
        Assert.Equal(FmaPeak.Accumulators * FmaPeak.Lanes * 3 * 0.5f, FmaPeak.Run(3, 0.5f));
    }

    public static TheoryData<string, int> LoopForms()
    {
        var data = new TheoryData<string, int>();
        if (Vector512.IsHardwareAccelerated) data.Add(nameof(KernelWidth.Vector512), 12);
        if (Vector256.IsHardwareAccelerated) data.Add(nameof(KernelWidth.Vector256), 12);
        if (Vector128.IsHardwareAccelerated)
        {
            data.Add(nameof(KernelWidth.Vector128), 12);
            data.Add(nameof(KernelWidth.Vector128), 16);   // ARM64's form
        }
        data.Add(nameof(KernelWidth.Scalar), 12);
        data.Add(nameof(KernelWidth.Scalar), 16);
        return data;
    }

    [Theory]
    [MemberData(nameof(LoopForms))]
    public void Every_form_of_the_fma_loop_runs_each_chain_on_every_lane(string widthName, int accumulators)
    {
        var width = Enum.Parse<KernelWidth>(widthName);
        Assert.Equal(accumulators * FmaPeak.LanesOf(width) * 777f, FmaPeak.Run(777, 1f, width, accumulators));
    }

    [Fact]
    public void The_share_of_the_peak_is_model_flops_over_time_for_quill_and_each_peer()
    {
        var f = new RoundFigures();
        f.Add(1000, 1000, torch113: 250, torch210: 500);   // tokens/s; 1,000 tokens a step
        var fields = new Dictionary<string, object>();
        var log = new StringWriter();
        PeakFraction.AddTo(fields, f, flopsPerStep: 4e9, tokensPerStep: 1000, peakGflops: 8, log);
        Assert.Equal(4.0, fields["gflop_per_step"]);
        Assert.Equal(4.0, fields["quill_gflops"]);          // 4e6 FLOPs a token x 1,000 tokens/s
        Assert.Equal(0.5, fields["quill_of_peak"]);
        Assert.Equal(0.25, fields["torch210_of_peak"]);
        Assert.Equal(0.125, fields["torch113_of_peak"]);
        Assert.Contains("Quill 4.0 GFLOP/s = 50.0% of it, PyTorch 2.10 25.0%, PyTorch 1.13 12.5%", log.ToString());

        var alone = new Dictionary<string, object>();
        var q = new RoundFigures();
        q.Add(1000, 1000, null, null);
        PeakFraction.AddTo(alone, q, 4e9, 1000, 8, null);
        Assert.False(alone.ContainsKey("torch210_of_peak"));
        Assert.False(alone.ContainsKey("torch113_of_peak"));
    }
}
