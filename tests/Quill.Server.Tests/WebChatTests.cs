// The web chat in headless Chromium (Debian's, driven by Selenium with its chromedriver; nothing downloaded):
// the page loads from the server itself, a message sent shows the reply while it is still streaming, the reply
// finishes, thumbs-up sends feedback that lands in the JSONL file; and the markdown renderer escapes HTML.
using System.Text.Json;
using OpenQA.Selenium;
using OpenQA.Selenium.Chrome;
using OpenQA.Selenium.Support.UI;
using Quill.Server.Tests.Support;

namespace Quill.Server.Tests;

public sealed class WebChatTests : IDisposable
{
    private readonly string dir = Directory.CreateTempSubdirectory("quill-webchat-").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    private ChromeDriver StartBrowser()
    {
        Environment.SetEnvironmentVariable("SE_OFFLINE", "true");
        var options = new ChromeOptions { BinaryLocation = BrowserFactAttribute.Chromium };
        options.AddArguments("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run", "--user-data-dir=" + Path.Combine(dir, "profile"));
        var service = ChromeDriverService.CreateDefaultService(Path.GetDirectoryName(BrowserFactAttribute.Driver)!, Path.GetFileName(BrowserFactAttribute.Driver));
        service.HideCommandPromptWindow = true;
        service.SuppressInitialDiagnosticInformation = true;
        return new ChromeDriver(service, options, TimeSpan.FromSeconds(60));
    }

    [BrowserFact]
    public async Task Message_streams_a_reply_and_thumbs_up_lands_in_the_feedback_file()
    {
        string feedback = Path.Combine(dir, "feedback.jsonl");
        var (model, _) = SlowBackend.Served("tiny", 20, maxBatch: 4, maxQueue: 4);
        await using var server = await TestServer.StartAsync(new ServerOptions { FeedbackPath = feedback }, model);
        using var browser = StartBrowser();
        var wait = new WebDriverWait(browser, TimeSpan.FromSeconds(30)) { PollingInterval = TimeSpan.FromMilliseconds(20) };
        // the page re-renders the streaming reply: an element found a moment ago may be gone by the next poll
        wait.IgnoreExceptionTypes(typeof(StaleElementReferenceException));
        browser.Navigate().GoToUrl(server.Address);
        browser.ExecuteScript("localStorage.setItem('quill.settings.v1', JSON.stringify({temperature: 1, maxTokens: 60}));");
        browser.Navigate().Refresh();
        wait.Until(d => d.FindElements(By.CssSelector("#model option")).Count > 0);
        Assert.Equal("tiny", browser.FindElement(By.Id("model")).GetAttribute("value"));

        browser.FindElement(By.Id("input")).SendKeys("Write me a poem about the sea.");
        browser.FindElement(By.Id("send")).Click();
        // streaming: part of the reply is on screen while the Stop button still shows
        wait.Until(d => d.FindElement(By.Id("stop")).Displayed && Reply(d).Length > 0);
        string partial = Reply(browser);
        wait.Until(d => !d.FindElement(By.Id("stop")).Displayed);
        string full = Reply(browser);
        Assert.True(full.Length > partial.Length, $"reply did not grow after '{partial}'");
        Assert.Contains("Write me a poem about the sea.", browser.FindElement(By.CssSelector(".msg.user")).Text, StringComparison.Ordinal);

        browser.FindElement(By.CssSelector(".msg.assistant .thumb-up")).Click();
        wait.Until(d => File.Exists(feedback) && File.ReadAllText(feedback).EndsWith('\n'));
        var lines = File.ReadAllLines(feedback);
        Assert.Single(lines);
        var entry = JsonDocument.Parse(lines[0]).RootElement;
        Assert.Equal("up", entry.GetProperty("rating").GetString());
        Assert.Equal("tiny", entry.GetProperty("model").GetString());
        Assert.False(string.IsNullOrEmpty(entry.GetProperty("conversation").GetString()), "the web chat sends its conversation's id (feedback export pairs by it)");
        Assert.False(string.IsNullOrEmpty(entry.GetProperty("reply").GetString()));
        Assert.True(DateTimeOffset.TryParse(entry.GetProperty("time").GetString(), System.Globalization.CultureInfo.InvariantCulture, out _));
        var prompt = entry.GetProperty("prompt");
        Assert.Equal("user", prompt[prompt.GetArrayLength() - 1].GetProperty("role").GetString());
        Assert.Equal("Write me a poem about the sea.", prompt[prompt.GetArrayLength() - 1].GetProperty("content").GetString());
        wait.Until(d => d.FindElement(By.CssSelector(".msg.assistant .thumb-up")).GetAttribute("aria-pressed") == "true");

        // the conversation survives a reload (localStorage)
        browser.Navigate().Refresh();
        wait.Until(d => d.FindElements(By.CssSelector(".msg.assistant")).Count == 1);
        Assert.Equal(full, Reply(browser));
    }

    [BrowserFact]
    public async Task Markdown_renderer_formats_code_and_escapes_html()
    {
        await using var server = await TestServer.StartAsync();
        using var browser = StartBrowser();
        browser.Navigate().GoToUrl(server.Address);
        new WebDriverWait(browser, TimeSpan.FromSeconds(30)).Until(d => ((IJavaScriptExecutor)d).ExecuteScript("return typeof QuillMarkdown") as string == "object");
        string html = (string?)browser.ExecuteScript("return QuillMarkdown.render(arguments[0]);",
            "# Title\n**bold** and `a<b>` <script>x</script>\n\n```cs\nif (a < b) {}\n```\n- one\n- two\n[link](javascript:alert(1)) [ok](https://example.com)") ?? "";
        Assert.Contains("<h1>Title</h1>", html, StringComparison.Ordinal);
        Assert.Contains("<strong>bold</strong>", html, StringComparison.Ordinal);
        Assert.Contains("<code>a&lt;b&gt;</code>", html, StringComparison.Ordinal);
        Assert.Contains("&lt;script&gt;", html, StringComparison.Ordinal);
        Assert.DoesNotContain("<script>", html, StringComparison.Ordinal);
        Assert.Contains("<pre><code class=\"language-cs\">if (a &lt; b) {}</code></pre>", html, StringComparison.Ordinal);
        Assert.Contains("<ul><li>one</li><li>two</li></ul>", html, StringComparison.Ordinal);
        Assert.DoesNotContain("href=\"javascript", html, StringComparison.Ordinal);
        Assert.Contains("<a href=\"https://example.com\"", html, StringComparison.Ordinal);
    }

    /// <summary>The last reply's text, read in one script call (no element reference that streaming could make stale).</summary>
    private static string Reply(IWebDriver d) => ((IJavaScriptExecutor)d).ExecuteScript(
        "const r = document.querySelectorAll('.msg.assistant .body'); return r.length ? r[r.length - 1].innerText : '';") as string ?? "";
}
