using Quill.Kernels;

namespace Quill.Tests.Kernels;

/// <summary>The shared worker pool: every item runs exactly once whoever claims it, errors keep their type,
/// and nested or concurrent regions neither deadlock nor lose work.</summary>
public class WorkerPoolTests
{
    [Theory]
    [InlineData(1, 1, 2)]
    [InlineData(7, 1, 2)]
    [InlineData(1000, 1, 2)]
    [InlineData(1000, 37, 3)]
    [InlineData(5, 10, 2)]
    public void GuidedRunsEveryItemOnce(int n, int minChunk, int threads)
    {
        var hits = new int[n];
        var pieces = new System.Collections.Concurrent.ConcurrentBag<(int, int)>();
        WorkerPool.Guided(n, minChunk, threads, (s, e) =>
        {
            pieces.Add((s, e));
            for (int i = s; i < e; i++) Interlocked.Increment(ref hits[i]);
        });
        Assert.All(hits, h => Assert.Equal(1, h));
        // every piece but the last one of the range is at least minChunk long
        Assert.All(pieces, p => Assert.True(p.Item2 - p.Item1 >= Math.Min(minChunk, n) || p.Item2 == n, $"piece [{p.Item1}, {p.Item2})"));
    }

    [Fact]
    public void ChunksRunEachIndexOnceAndParallelForCutsDoNotDependOnTiming()
    {
        var hits = new int[64];
        WorkerPool.Chunks(64, 2, c => Interlocked.Increment(ref hits[c]));
        Assert.All(hits, h => Assert.Equal(1, h));

        // ParallelFor's cuts are a function of n and the thread count only
        for (int rep = 0; rep < 20; rep++)
        {
            var cuts = new System.Collections.Concurrent.ConcurrentBag<(int, int)>();
            KernelThreads.ParallelFor(1001, 1, 3, (s, e) => cuts.Add((s, e)));
            Assert.Equal([(0, 333), (333, 667), (667, 1001)], cuts.Order().ToArray());
        }
    }

    [Fact]
    public void BodyExceptionReachesTheCallerWithItsOwnType()
    {
        var e = Assert.Throws<InvalidFileException>(() =>
            WorkerPool.Guided(1000, 1, 2, (s, _) =>
            {
                if (s > 0) throw new InvalidFileException("bad block");
            }));
        Assert.Equal("bad block", e.Message);
        // the pool still works afterwards
        int sum = 0;
        WorkerPool.Chunks(10, 2, c => Interlocked.Add(ref sum, c));
        Assert.Equal(45, sum);
    }

    [Fact]
    public async Task NestedAndConcurrentRegionsFinish()
    {
        long total = 0;
        var callers = Enumerable.Range(0, 4).Select(_ => Task.Run(() =>
        {
            for (int rep = 0; rep < 50; rep++)
            {
                WorkerPool.Guided(64, 1, 2, (s, e) =>
                    WorkerPool.Chunks(e - s, 2, _ => Interlocked.Increment(ref total)));
            }
        })).ToArray();
        await Task.WhenAll(callers).WaitAsync(TimeSpan.FromSeconds(60)); // a deadlock fails with a timeout
        Assert.Equal(4L * 50 * 64, total);
    }
}
