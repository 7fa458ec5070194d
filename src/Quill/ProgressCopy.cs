// Copies a download's body to its file in 64 KiB pieces, counting the bytes and the time, and reports progress at
// most every 100 ms, for the two downloaders (Data.Fetch.DatasetFetcher, Hub.HubClient). The count stays readable
// after a copy breaks off, so the caller can say how far it got. Does not handle: retries, rate limits.
using System.Diagnostics;

namespace Quill;

internal sealed class ProgressCopy
{
    private static readonly TimeSpan Interval = TimeSpan.FromMilliseconds(100);
    private readonly Stopwatch clock = new();

    /// <summary>Bytes written so far.</summary>
    public long Bytes { get; private set; }

    /// <summary>Time since the copy started.</summary>
    public TimeSpan Elapsed => clock.Elapsed;

    /// <summary>Copies from to to; report (if given) receives the bytes written so far, at most every 100 ms.</summary>
    public async Task RunAsync(Stream from, Stream to, Action<long>? report, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(from);
        ArgumentNullException.ThrowIfNull(to);
        clock.Start();
        byte[] buffer = new byte[1 << 16];
        TimeSpan last = TimeSpan.Zero;
        int n;
        while ((n = await from.ReadAsync(buffer, ct).ConfigureAwait(false)) > 0)
        {
            await to.WriteAsync(buffer.AsMemory(0, n), ct).ConfigureAwait(false);
            Bytes += n;
            if (report != null && clock.Elapsed - last >= Interval)
            {
                last = clock.Elapsed;
                report(Bytes);
            }
        }
    }
}
