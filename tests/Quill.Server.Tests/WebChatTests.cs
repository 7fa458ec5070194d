// The web chat in headless Chromium (Debian's, driven by Selenium with its chromedriver; nothing downloaded):
// the page loads from the server itself, a message sent shows the reply while it is still streaming, the reply
// finishes with its token counts and speed, thumbs-up sends feedback that lands in the JSONL file; the markdown
// renderer escapes HTML, also at every prefix of a reply as it streams; settings start folded, an empty chat shows
// its hint, dark mode follows the system, conversations export and import as JSON, keyboard shortcuts work; and at
// 1280 and 375 px wide (screenshots in the test output folder) nothing overflows the viewport or overlaps.
using System.Text.Json;
using OpenQA.Selenium;
using OpenQA.Selenium.Chrome;
using OpenQA.Selenium.Support.UI;
using Quill.Server.Tests.Support;
using Xunit.Abstractions;

namespace Quill.Server.Tests;

public sealed class WebChatTests(ITestOutputHelper output) : IDisposable
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
        // under the reply: its token count (60, the max tokens set above), tokens/s and the prompt's tokens
        string stats = browser.FindElement(By.CssSelector(".msg.assistant .stats")).Text;
        Assert.Matches(@"^\d+ tokens? · [\d.]+ tokens/s · \d+ ms to first token · prompt \d+ tokens$", stats);
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

    private static object Js(IWebDriver d, string script, params object[] args) => ((IJavaScriptExecutor)d).ExecuteScript(script, args)!;

    private static void Viewport(ChromeDriver browser, int width, int height) =>
        browser.ExecuteCdpCommand("Emulation.setDeviceMetricsOverride", new Dictionary<string, object?>
        {
            ["width"] = width, ["height"] = height, ["deviceScaleFactor"] = 1, ["mobile"] = width < 500,
        });

    private static void ColorScheme(ChromeDriver browser, string scheme) =>
        browser.ExecuteCdpCommand("Emulation.setEmulatedMedia", new Dictionary<string, object?>
        {
            ["features"] = new object[] { new Dictionary<string, object> { ["name"] = "prefers-color-scheme", ["value"] = scheme } },
        });

    /// <summary>
    /// Every visible element that reaches past the viewport's left or right edge (outside any scrolling or clipping
    /// container that holds it), a page or a region that scrolls sideways (code blocks and the phone layout's strip
    /// of conversations may), and any two of the page's regions that overlap.
    /// </summary>
    private const string LayoutProblems = """
        const vw = document.documentElement.clientWidth, problems = [];
        if (document.documentElement.scrollWidth > vw) problems.push('the page scrolls sideways: ' + document.documentElement.scrollWidth + ' > ' + vw);
        const name = (el) => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') + (el.className && typeof el.className === 'string' ? '.' + el.className.trim().replace(/\s+/g, '.') : '');
        const clip = (el) => { for (let a = el.parentElement; a; a = a.parentElement) { const o = getComputedStyle(a).overflowX; if (o !== 'visible') return a.getBoundingClientRect(); } return null; };
        for (const el of document.querySelectorAll('body *')) {
          const st = getComputedStyle(el);
          if (st.display === 'none' || st.visibility === 'hidden' || el.closest('[hidden]')) continue;
          const r = el.getBoundingClientRect();
          if (r.width === 0 && r.height === 0) continue;
          const c = clip(el);
          const left = c ? Math.max(r.left, c.left) : r.left, right = c ? Math.min(r.right, c.right) : r.right;
          if (right > vw + 0.5 || left < -0.5) problems.push(name(el) + ' spans ' + Math.round(r.left) + '..' + Math.round(r.right) + ' of ' + vw);
        }
        // only code blocks and the phone layout's strip of conversations may scroll sideways
        for (const el of document.querySelectorAll('body *')) {
          if (el.tagName === 'PRE' || el.id === 'conversations' || el.closest('[hidden]')) continue;
          const o = getComputedStyle(el).overflowX;
          if ((o === 'auto' || o === 'scroll') && el.scrollWidth > el.clientWidth + 1) problems.push(name(el) + ' scrolls sideways: ' + el.scrollWidth + ' > ' + el.clientWidth);
        }
        const regions = ['sidebar', 'settings', 'messages', 'empty', 'status', 'composer'].map((id) => document.getElementById(id))
          .filter((el) => el && !el.hidden && el.getBoundingClientRect().height > 0);
        for (let i = 0; i < regions.length; i++) for (let j = i + 1; j < regions.length; j++) {
          const a = regions[i].getBoundingClientRect(), b = regions[j].getBoundingClientRect();
          const w = Math.min(a.right, b.right) - Math.max(a.left, b.left), h = Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top);
          if (w > 1 && h > 1) problems.push('#' + regions[i].id + ' overlaps #' + regions[j].id);
        }
        return problems;
        """;

    private void CheckLayout(ChromeDriver browser, string shot)
    {
        var problems = ((IReadOnlyCollection<object>)Js(browser, LayoutProblems)).Select(p => p.ToString()).ToList();
        string folder = Path.Combine(AppContext.BaseDirectory, "screenshots");
        Directory.CreateDirectory(folder);
        string file = Path.Combine(folder, shot + ".png");
        browser.GetScreenshot().SaveAsFile(file);
        output.WriteLine($"screenshot: {file}");
        Assert.True(problems.Count == 0, $"{shot}: " + string.Join("; ", problems));
    }

    private const string LongConversation = """
        {"format":"quill-chat","version":1,"conversations":[{"id":"imported-1","title":"A long reply","messages":[
          {"role":"user","content":"Show me code with a very long line and a word that never breaks: Pneumonoultramicroscopicsilicovolcanoconiosis-Pneumonoultramicroscopicsilicovolcanoconiosis"},
          {"role":"assistant","content":"Here it is:\n\n```js\nconst x = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30].map((n) => n * n);\n```\n\nAnd **bold** text with `inline code` and https://example.com/a/very/long/url/that/goes/on/and/on/and/on/without/any/space/at/all","model":"tiny","stats":{"promptTokens":12,"completionTokens":40,"tokensPerSecond":123.4,"firstTokenMs":9}}]}]}
        """;

    [BrowserFact]
    public async Task Layout_holds_at_desktop_and_phone_widths_with_hint_dark_mode_shortcuts_and_import()
    {
        var (model, _) = SlowBackend.Served("tiny", 20, maxBatch: 4, maxQueue: 4);
        await using var server = await TestServer.StartAsync(null, model);
        using var browser = StartBrowser();
        var wait = new WebDriverWait(browser, TimeSpan.FromSeconds(30)) { PollingInterval = TimeSpan.FromMilliseconds(20) };
        wait.IgnoreExceptionTypes(typeof(StaleElementReferenceException));
        foreach (int width in new[] { 1280, 375 })
        {
            Viewport(browser, width, width > 500 ? 800 : 740);
            browser.Navigate().GoToUrl(server.Address);
            browser.ExecuteScript("localStorage.clear();");
            browser.Navigate().Refresh();
            wait.Until(d => d.FindElement(By.Id("empty-model")).Text == "tiny");
            // settings start folded; the empty chat shows its hint with the shortcuts
            Assert.False(browser.FindElement(By.Id("settings")).Displayed);
            Assert.Equal("false", browser.FindElement(By.Id("toggle-settings")).GetAttribute("aria-expanded"));
            Assert.True(browser.FindElement(By.Id("empty")).Displayed);
            Assert.Contains("Esc", browser.FindElement(By.Id("empty")).Text, StringComparison.Ordinal);
            CheckLayout(browser, $"webchat-{width}-empty");

            // a conversation with a long code line, a long word and a long URL, imported from JSON
            Assert.Equal(1L, Js(browser, "return QuillChat.importConversations(arguments[0]);", LongConversation));
            browser.FindElements(By.CssSelector("#conversations li span")).Single(e => e.Text == "A long reply").Click();
            wait.Until(d => d.FindElements(By.CssSelector(".msg.assistant")).Count == 1);
            Assert.False(browser.FindElement(By.Id("empty")).Displayed);
            Assert.Equal("40 tokens · 123.4 tokens/s · 9 ms to first token · prompt 12 tokens", browser.FindElement(By.CssSelector(".msg.assistant .stats")).Text);
            CheckLayout(browser, $"webchat-{width}");
            new OpenQA.Selenium.Interactions.Actions(browser).KeyDown(Keys.Control).KeyDown(Keys.Shift).SendKeys("s").KeyUp(Keys.Shift).KeyUp(Keys.Control).Perform();
            wait.Until(d => d.FindElement(By.Id("settings")).Displayed);
            Assert.Equal("true", browser.FindElement(By.Id("toggle-settings")).GetAttribute("aria-expanded"));
            CheckLayout(browser, $"webchat-{width}-settings");
            browser.FindElement(By.Id("toggle-settings")).Click();
            wait.Until(d => !d.FindElement(By.Id("settings")).Displayed);
        }

        // dark mode follows the system
        Assert.Equal("rgb(255, 255, 255)", Js(browser, "return getComputedStyle(document.body).backgroundColor;"));
        ColorScheme(browser, "dark");
        Assert.Equal("rgb(13, 17, 23)", Js(browser, "return getComputedStyle(document.body).backgroundColor;"));
        CheckLayout(browser, "webchat-375-dark");
        Viewport(browser, 1280, 800);
        CheckLayout(browser, "webchat-1280-dark");
        ColorScheme(browser, "light");

        // export holds what import took; importing it again adds nothing; a file of another shape is refused
        var exported = JsonDocument.Parse((string)Js(browser, "return QuillChat.exportData();")).RootElement;
        Assert.Equal("quill-chat", exported.GetProperty("format").GetString());
        var imported = exported.GetProperty("conversations").EnumerateArray().Single(c => c.GetProperty("id").GetString() == "imported-1");
        Assert.Equal(2, imported.GetProperty("messages").GetArrayLength());
        Assert.StartsWith("Show me code", imported.GetProperty("messages")[0].GetProperty("content").GetString(), StringComparison.Ordinal);
        Assert.Equal(0L, Js(browser, "return QuillChat.importConversations(arguments[0]);", exported.GetRawText()));
        string refused = (string)Js(browser, "try { QuillChat.importConversations('{\"conversations\": []}'); return 'accepted'; } catch (e) { return e.message; }");
        Assert.Contains("not a Quill chat export", refused, StringComparison.Ordinal);
        refused = (string)Js(browser, "try { QuillChat.importConversations('{\"format\":\"quill-chat\",\"conversations\":[{\"id\":\"x\",\"title\":\"t\",\"messages\":[{\"role\":\"tool\",\"content\":\"\"}]}]}'); return 'accepted'; } catch (e) { return e.message; }");
        Assert.Contains("conversation 1 is not", refused, StringComparison.Ordinal);

        // shortcuts: Ctrl+Shift+O opens a new chat, / focuses the input, Esc stops a streaming reply
        int chats = browser.FindElements(By.CssSelector("#conversations li")).Count;
        browser.FindElement(By.TagName("body")).Click();
        new OpenQA.Selenium.Interactions.Actions(browser).KeyDown(Keys.Control).KeyDown(Keys.Shift).SendKeys("o").KeyUp(Keys.Shift).KeyUp(Keys.Control).Perform();
        wait.Until(d => d.FindElements(By.CssSelector("#conversations li")).Count == chats + 1);
        Assert.True(browser.FindElement(By.Id("empty")).Displayed);
        browser.FindElement(By.TagName("body")).Click();
        new OpenQA.Selenium.Interactions.Actions(browser).SendKeys("/").Perform();
        Assert.Equal("input", Js(browser, "return document.activeElement.id;"));
        browser.ExecuteScript("localStorage.setItem('quill.settings.v1', JSON.stringify({temperature: 1, maxTokens: 400}));");
        browser.FindElement(By.Id("input")).SendKeys("Tell me a long story." + Keys.Enter);
        wait.Until(d => d.FindElement(By.Id("stop")).Displayed && Reply(d).Length > 0);
        new OpenQA.Selenium.Interactions.Actions(browser).SendKeys(Keys.Escape).Perform();
        wait.Until(d => !d.FindElement(By.Id("stop")).Displayed);
        Assert.Equal("Stopped.", browser.FindElement(By.Id("status")).Text);
    }

    [BrowserFact]
    public async Task Streaming_markdown_is_safe_at_every_prefix()
    {
        await using var server = await TestServer.StartAsync();
        using var browser = StartBrowser();
        browser.Navigate().GoToUrl(server.Address);
        new WebDriverWait(browser, TimeSpan.FromSeconds(30)).Until(d => ((IJavaScriptExecutor)d).ExecuteScript("return typeof QuillMarkdown") as string == "object");
        const string reply = "Hi <img src=x onerror=alert(1)>\n```html\n<script>alert(1)</script>\n```\n[x](javascript:alert(1)) **<b onmouseover=alert(1)>b</b>** "
            + "`<svg onload=alert(1)>` [ok](https://example.com/\"onmouseover=alert(1)) <a href=\"javascript:alert(1)\">y</a> _<iframe src=//evil>_\n> <style>*{display:none}</style>";
        // as a reply streams in, the page renders every prefix of it; none may make an element or attribute the
        // renderer does not write itself, or a link that is not http(s)
        var bad = (IReadOnlyCollection<object>)Js(browser, """
            const s = arguments[0], bad = [];
            const allowed = new Set(['P', 'BR', 'STRONG', 'EM', 'CODE', 'PRE', 'H1', 'H2', 'H3', 'H4', 'H5', 'H6', 'UL', 'OL', 'LI', 'BLOCKQUOTE', 'A']);
            for (let i = 0; i <= s.length; i++) {
              const d = document.createElement('div');
              d.innerHTML = QuillMarkdown.render(s.slice(0, i));
              for (const el of d.querySelectorAll('*')) {
                if (!allowed.has(el.tagName)) bad.push(i + ': <' + el.tagName + '>');
                for (const a of el.attributes) {
                  if (/^on/i.test(a.name) || a.name === 'style' || a.name === 'src') bad.push(i + ': ' + a.name);
                  if (a.name === 'href' && !/^https?:\/\//.test(a.value)) bad.push(i + ': href ' + a.value);
                }
              }
            }
            const whole = document.createElement('div');
            whole.innerHTML = QuillMarkdown.render(s);
            if (!whole.textContent.includes('<img src=x onerror=alert(1)>') || !whole.textContent.includes('<script>alert(1)</script>')) bad.push('the markup is not shown as text');
            return bad;
            """, reply);
        Assert.Empty(bad);
    }

    /// <summary>The last reply's text, read in one script call (no element reference that streaming could make stale).</summary>
    private static string Reply(IWebDriver d) => ((IJavaScriptExecutor)d).ExecuteScript(
        "const r = document.querySelectorAll('.msg.assistant .body'); return r.length ? r[r.length - 1].innerText : '';") as string ?? "";
}
