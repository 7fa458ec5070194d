// A loopback HTTP server for tests that fake a web service (dataset downloads, the Hugging Face hub): an
// HttpListener on a free port of 127.0.0.1 (and optionally the same port under the name localhost, a second "host"
// for redirect tests), each request handed to a callback on one background loop. A port taken by another test
// between the probe and the start is retried. Does not handle: TLS, concurrent request handling.
using System.Net;
using System.Net.Sockets;

namespace Quill.Tests.Support;

internal sealed class LoopbackHttp : IDisposable
{
    private readonly HttpListener listener = new();
    private readonly Task loop;

    /// <param name="handle">Answers one request (exceptions from a client that went away are ignored).</param>
    /// <param name="alsoLocalhost">Also listen as http://localhost:PORT/ (<see cref="LocalhostUrl"/>).</param>
    public LoopbackHttp(Action<HttpListenerContext> handle, bool alsoLocalhost = false)
    {
        for (int attempt = 0; ; attempt++)
        {
            var probe = new TcpListener(IPAddress.Loopback, 0);
            probe.Start();
            int port = ((IPEndPoint)probe.LocalEndpoint).Port;
            probe.Stop();
            BaseUrl = $"http://127.0.0.1:{port}/";
            LocalhostUrl = $"http://localhost:{port}/";
            listener.Prefixes.Clear();
            listener.Prefixes.Add(BaseUrl);
            if (alsoLocalhost) listener.Prefixes.Add(LocalhostUrl);
            try
            {
                listener.Start();
                break;
            }
            catch (HttpListenerException) when (attempt < 5)
            {
                // another test took the port between the probe and the start: try another
            }
        }
        loop = Task.Run(() => Serve(handle));
    }

    public string BaseUrl { get; private set; } = "";

    public string LocalhostUrl { get; private set; } = "";

    private async Task Serve(Action<HttpListenerContext> handle)
    {
        while (listener.IsListening)
        {
            HttpListenerContext ctx;
            try
            {
                ctx = await listener.GetContextAsync();
            }
            catch (Exception e) when (e is HttpListenerException or ObjectDisposedException or InvalidOperationException)
            {
                return;
            }
            try
            {
                handle(ctx);
            }
            catch (Exception e) when (e is HttpListenerException or IOException)
            {
                // the client went away mid-response
            }
        }
    }

    public void Dispose()
    {
        listener.Stop();
        listener.Close();
        try
        {
            loop.Wait(TimeSpan.FromSeconds(5));
        }
        catch (AggregateException)
        {
        }
    }
}
