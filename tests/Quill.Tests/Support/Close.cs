// One comparison for model outputs against a reference: the largest |want - got| / (1 + |want|) over all elements
// must not exceed the tolerance; the failure names the worst element.
namespace Quill.Tests.Support;

internal static class Close
{
    public static void Assert(float[] want, float[] got, double tol, string what)
    {
        Xunit.Assert.Equal(want.Length, got.Length);
        double worst = 0;
        int at = 0;
        for (int i = 0; i < want.Length; i++)
        {
            double d = Math.Abs(want[i] - got[i]) / (1 + Math.Abs(want[i]));
            if (d > worst) (worst, at) = (d, i);
        }
        Xunit.Assert.True(worst <= tol, $"{what}: element {at} is {got[at]}, expected {want[at]} (relative {worst:G3} > {tol})");
    }
}
