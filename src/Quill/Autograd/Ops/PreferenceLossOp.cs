// Preference losses over pairs of sequence log-probabilities (SequenceLogProbOp), forward and backward side by side.
// The batch is laid out as TRL lays it ([chosen_0..chosen_P-1, rejected_0..rejected_P-1]); c, r are the policy's
// summed completion log-probs of a pair's chosen and rejected reply, c0, r0 the reference's, nc, nr their completion
// token counts, ac = c / nc and ar = r / nr the length-averaged ones. Formulas as wave2-facts section 2 (TRL):
//   dpo (sigmoid)  l = -log sigmoid(beta ((c - c0) - (r - r0)))                   rewards beta (c - c0), beta (r - r0)
//   ipo            l = (((c - c0) / nc - (r - r0) / nr) - 1 / (2 beta))^2         rewards beta (c - c0) / nc, beta (r - r0) / nr
//   orpo           l = -lambda log sigmoid((ac - ar) - (log(1 - e^ac) - log(1 - e^ar))), plus the NLL of the chosen
//                  tokens (mean over every chosen token of the step)             rewards lambda ac, lambda ar
//   simpo          l = -log sigmoid(beta (ac - ar) - gamma)                        rewards beta ac, beta ar
// (ORPO and SimPO use no reference; ORPO's average log-probs are capped at -1e-6, where log(1 - e^a) is finite.)
// DPO, IPO and SimPO can add alpha times the same NLL of the chosen tokens (RPO, Pang et al. 2024,
// arXiv:2404.19733; TRL's DPOConfig.rpo_alpha, whose paper value is 1): it keeps the chosen replies likely while the
// margin grows, where plain DPO can lower both ("likelihood displacement"). The loss of a micro-batch is its share of
// the step's mean: pair terms are divided by the step's pair count and the NLL by the step's chosen-token count, so
// the micro-batches of a step add up to the loss of one large batch (back-propagate each with seed 1). Math in double.
// Glossary: P pairs in the micro-batch.
using Quill.Tensors;

namespace Quill.Autograd.Ops;

/// <summary>Which preference loss.</summary>
public enum PreferenceLoss
{
    /// <summary>DPO with the sigmoid loss (TRL loss_type "sigmoid").</summary>
    Dpo,

    /// <summary>IPO: squared distance of the length-averaged log-ratio margin from 1 / (2 beta).</summary>
    Ipo,

    /// <summary>ORPO: chosen NLL minus lambda log sigmoid of the log odds ratio; no reference.</summary>
    Orpo,

    /// <summary>SimPO: length-averaged margin with a target margin gamma; no reference.</summary>
    SimPo,
}

/// <summary>A preference loss and its constants.</summary>
/// <param name="Loss">Which loss.</param>
/// <param name="Beta">beta (DPO, IPO: tau, SimPO); ORPO's lambda.</param>
/// <param name="Gamma">SimPO's target margin gamma (TRL's simpo_gamma default 0.5).</param>
/// <param name="NllWeight">DPO, IPO, SimPO: weight alpha of the chosen tokens' NLL added to the loss (RPO; TRL's
/// rpo_alpha; 0 = none). ORPO always adds it with weight 1 and takes no other.</param>
public sealed record PreferenceSettings(PreferenceLoss Loss, double Beta, double Gamma = 0.5, double NllWeight = 0)
{
    /// <summary>True when the loss compares against a reference model (DPO, IPO).</summary>
    public bool NeedsReference => Loss is PreferenceLoss.Dpo or PreferenceLoss.Ipo;

    /// <summary>The weight of the chosen tokens' NLL in the loss: 1 for ORPO, NllWeight otherwise.</summary>
    public double ChosenNllWeight => Loss == PreferenceLoss.Orpo ? 1 : NllWeight;
}

/// <summary>Sums over a micro-batch's pairs of what a step reports (divide by Pairs for means).</summary>
public struct PreferenceStats
{
    public int Pairs;
    public int Correct;        // pairs whose chosen reward exceeds the rejected one
    public double ChosenReward, RejectedReward, Margin;

    public void Add(PreferenceStats o)
    {
        Pairs += o.Pairs;
        Correct += o.Correct;
        ChosenReward += o.ChosenReward;
        RejectedReward += o.RejectedReward;
        Margin += o.Margin;
    }
}

/// <summary>loss [1] = the micro-batch's share of the step's mean preference loss.</summary>
public static class PreferenceLossOp
{
    /// <param name="g">The graph.</param>
    /// <param name="logp">[2P] policy log-probs, chosen first (SequenceLogProbOp).</param>
    /// <param name="reference">[2P] reference log-probs in the same order (null for ORPO and SimPO).</param>
    /// <param name="lengths">[2P] completion tokens of each sequence (at least 1).</param>
    /// <param name="settings">The loss and its constants.</param>
    /// <param name="stepPairs">Pairs in the whole step (the mean's denominator).</param>
    /// <param name="stepChosenTokens">Chosen completion tokens in the whole step (the NLL's denominator: ORPO, RPO).</param>
    /// <param name="stats">Rewards and accuracy of these pairs.</param>
    public static Tensor Forward(Graph g, Tensor logp, float[]? reference, int[] lengths, PreferenceSettings settings,
        long stepPairs, long stepChosenTokens, out PreferenceStats stats)
    {
        ArgumentNullException.ThrowIfNull(g);
        ArgumentNullException.ThrowIfNull(logp);
        ArgumentNullException.ThrowIfNull(lengths);
        ArgumentNullException.ThrowIfNull(settings);
        int n = logp.Length;
        if (n % 2 != 0 || lengths.Length != n) throw new ArgumentException($"{n} log-probs and {lengths.Length} lengths: need 2P of each.");
        if (settings.NeedsReference && (reference == null || reference.Length != n)) throw new ArgumentException($"{settings.Loss} needs {n} reference log-probs.");
        if (!(settings.NllWeight >= 0) || double.IsInfinity(settings.NllWeight) || (settings.Loss == PreferenceLoss.Orpo && settings.NllWeight != 0))
            throw new ArgumentException($"the NLL weight must be finite and at least 0, and 0 for ORPO (got {settings.NllWeight}).");
        if (stepPairs < n / 2 || (settings.ChosenNllWeight > 0 && stepChosenTokens <= 0)) throw new ArgumentException("the step's totals must cover this micro-batch.");
        foreach (int len in lengths) if (len < 1) throw new ArgumentException("every sequence needs at least one completion token.");
        var grad = new double[n];
        stats = default;
        double loss = Compute(logp.Span, reference, lengths, settings, stepPairs, stepChosenTokens, grad, ref stats);
        var y = g.NewTensor([1]);
        y.Span[0] = (float)loss;
        if (g.NeedsGrad(logp))
        {
            y.RequiresGrad = true;
            g.Record(new Node(logp, grad, y));
        }
        return y;
    }

    /// <summary>The loss; writes d loss / d logp into grad and adds the pairs' rewards to stats.</summary>
    public static double Compute(ReadOnlySpan<float> logp, float[]? reference, int[] lengths, PreferenceSettings settings,
        long stepPairs, long stepChosenTokens, double[] grad, ref PreferenceStats stats)
    {
        ArgumentNullException.ThrowIfNull(lengths);
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(grad);
        int p = logp.Length / 2;
        double beta = settings.Beta, nll = settings.ChosenNllWeight, sum = 0;
        for (int i = 0; i < p; i++)
        {
            double c = logp[i], r = logp[p + i], nc = lengths[i], nr = lengths[p + i];
            double c0 = reference?[i] ?? 0, r0 = reference?[p + i] ?? 0;
            double l, dc, dr, rc, rr; // pair loss, its gradient wrt c and r, the two rewards
            switch (settings.Loss)
            {
                case PreferenceLoss.Dpo:
                {
                    double z = beta * ((c - c0) - (r - r0));
                    l = Softplus(-z);
                    double dz = -Sigmoid(-z);
                    dc = beta * dz;
                    dr = -beta * dz;
                    rc = beta * (c - c0);
                    rr = beta * (r - r0);
                    break;
                }
                case PreferenceLoss.Ipo:
                {
                    double h = (c - c0) / nc - (r - r0) / nr, e = h - 1 / (2 * beta);
                    l = e * e;
                    dc = 2 * e / nc;
                    dr = -2 * e / nr;
                    rc = beta * (c - c0) / nc;
                    rr = beta * (r - r0) / nr;
                    break;
                }
                case PreferenceLoss.Orpo:
                {
                    // log(1 - e^a) needs a < 0; a float sum of log-probs can round to 0 on a sure reply
                    double ac = Math.Min(c / nc, MaxAverageLogProb), ar = Math.Min(r / nr, MaxAverageLogProb);
                    double lo = (ac - ar) - (Log1mExp(ac) - Log1mExp(ar));
                    l = -beta * LogSigmoid(lo);
                    double dlo = -beta * Sigmoid(-lo);
                    dc = dlo / -double.ExpM1(ac) / nc;   // d lo / d ac = 1 / (1 - e^ac)
                    dr = -dlo / -double.ExpM1(ar) / nr;
                    rc = beta * ac;
                    rr = beta * ar;
                    break;
                }
                case PreferenceLoss.SimPo:
                {
                    double ac = c / nc, ar = r / nr, z = beta * (ac - ar) - settings.Gamma;
                    l = Softplus(-z);
                    double dz = -Sigmoid(-z);
                    dc = beta * dz / nc;
                    dr = -beta * dz / nr;
                    rc = beta * ac;
                    rr = beta * ar;
                    break;
                }
                default:
                    throw new ArgumentOutOfRangeException(nameof(settings), settings.Loss, "unknown preference loss");
            }
            sum += l / stepPairs;
            grad[i] = dc / stepPairs;
            grad[p + i] = dr / stepPairs;
            if (nll > 0)
            {
                sum -= nll * c / stepChosenTokens; // the chosen tokens' NLL, a mean over the step's chosen tokens
                grad[i] -= nll / stepChosenTokens;
            }
            stats.Pairs++;
            if (rc > rr) stats.Correct++;
            stats.ChosenReward += rc;
            stats.RejectedReward += rr;
            stats.Margin += rc - rr;
        }
        return sum;
    }

    /// <summary>ORPO: the largest average log-prob used (below 0, where log(1 - e^a) is finite).</summary>
    private const double MaxAverageLogProb = -1e-6;

    private static double Sigmoid(double x) => x >= 0 ? 1 / (1 + Math.Exp(-x)) : Math.Exp(x) / (1 + Math.Exp(x));

    private static double Softplus(double x) => x > 0 ? x + Math.Log(1 + Math.Exp(-x)) : Math.Log(1 + Math.Exp(x));

    private static double LogSigmoid(double x) => -Softplus(-x);

    /// <summary>log(1 - e^x) for x &lt; 0, accurate at both ends.</summary>
    private static double Log1mExp(double x) => x > -0.6931471805599453 ? Math.Log(-double.ExpM1(x)) : Math.Log(1 - Math.Exp(x));

    private sealed class Node(Tensor logp, double[] grad, Tensor y) : Autograd.Node
    {
        public override void Backward(Graph g)
        {
            if (y.Grad == null) return;
            float seed = y.Grad.Span[0];
            var dx = g.GradOf(logp).Span;
            for (int i = 0; i < grad.Length; i++) dx[i] += (float)(seed * grad[i]);
        }
    }
}
