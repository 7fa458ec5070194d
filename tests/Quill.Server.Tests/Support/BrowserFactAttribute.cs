// A fact that needs Debian's headless Chromium and chromedriver (.ci/run installs them). Without them the test
// is skipped with the reason, unless QUILL_REQUIRE_TESTDATA=1 (as CI sets), where it runs and fails loudly.
namespace Quill.Server.Tests.Support;

public sealed class BrowserFactAttribute : FactAttribute
{
    public const string Chromium = "/usr/bin/chromium";
    public const string Driver = "/usr/bin/chromedriver";

    public BrowserFactAttribute()
    {
        bool present = File.Exists(Chromium) && File.Exists(Driver);
        if (!present && Environment.GetEnvironmentVariable("QUILL_REQUIRE_TESTDATA") != "1")
            Skip = $"needs {Chromium} and {Driver} (apt-get install chromium chromium-driver)";
    }
}
