// Hugging Face's cache layout, shared with its Python tools: CACHE/models--ORG--REPO/ holds blobs/<etag> (the files'
// contents, named by their sha256 or git blob id), refs/<revision> (the commit a branch pointed to) and
// snapshots/<commit>/<path> (symlinks to ../../blobs/<etag>, so two revisions share unchanged files). A file is
// written as blobs/<etag>.incomplete (resumable) and renamed when complete and verified, so nothing half-written
// ever sits under a final name.
// Does not handle: datasets and spaces, the cache's lock files (one writer at a time is assumed), Windows without
// symlink rights (a copy is made instead).
namespace Quill.Hub;

/// <summary>One repository in the cache.</summary>
/// <param name="Repo">"ORG/REPO".</param>
/// <param name="Folder">Its models--ORG--REPO folder.</param>
/// <param name="Bytes">Size of its blobs.</param>
/// <param name="Files">Paths in its newest snapshot.</param>
/// <param name="LastModified">When the folder last changed.</param>
public sealed record CachedRepo(string Repo, string Folder, long Bytes, IReadOnlyList<string> Files, DateTime LastModified);

/// <summary>The hub cache folder.</summary>
public sealed class HubCache(string root)
{
    public string Root { get; } = root;

    /// <summary>models--ORG--REPO for a repo.</summary>
    public string RepoFolder(string repo) => Path.Combine(Root, "models--" + repo.Replace("/", "--", StringComparison.Ordinal));

    public string BlobPath(string repo, string etag) => Path.Combine(RepoFolder(repo), "blobs", etag);

    public string SnapshotFolder(string repo, string commit) => Path.Combine(RepoFolder(repo), "snapshots", commit);

    /// <summary>The snapshot folder a revision points to, or null when the revision was never fetched.</summary>
    public string? Snapshot(string repo, string revision)
    {
        string refFile = Path.Combine(RepoFolder(repo), "refs", revision);
        string commit = File.Exists(refFile) ? File.ReadAllText(refFile).Trim() : revision;
        string dir = SnapshotFolder(repo, commit);
        return Directory.Exists(dir) ? dir : null;
    }

    /// <summary>Records that a revision points to a commit.</summary>
    public void WriteRef(string repo, string revision, string commit)
    {
        string refFile = Path.Combine(RepoFolder(repo), "refs", revision);
        Directory.CreateDirectory(Path.GetDirectoryName(refFile)!);
        AtomicFile.WriteAllText(refFile, commit);
    }

    /// <summary>Makes snapshots/commit/path point to the blob (a relative symlink, as huggingface_hub makes).</summary>
    public string Link(string repo, string commit, string path, string etag)
    {
        string target = Path.Combine(SnapshotFolder(repo, commit), path);
        Directory.CreateDirectory(Path.GetDirectoryName(target)!);
        string blob = BlobPath(repo, etag);
        if (File.Exists(target) || new FileInfo(target).LinkTarget != null) File.Delete(target);
        string relative = Path.GetRelativePath(Path.GetDirectoryName(target)!, blob);
        try
        {
            File.CreateSymbolicLink(target, relative);
        }
        catch (IOException)
        {
            File.Copy(blob, target); // no symlink rights: a copy still reads the same
        }
        catch (UnauthorizedAccessException)
        {
            File.Copy(blob, target);
        }
        return target;
    }

    /// <summary>Every repository in the cache.</summary>
    public IReadOnlyList<CachedRepo> List()
    {
        if (!Directory.Exists(Root)) return [];
        var repos = new List<CachedRepo>();
        foreach (string dir in Directory.EnumerateDirectories(Root, "models--*").Order(StringComparer.Ordinal))
        {
            string name = Path.GetFileName(dir)["models--".Length..];
            int sep = name.IndexOf("--", StringComparison.Ordinal);
            if (sep <= 0) continue;
            string repo = name[..sep] + "/" + name[(sep + 2)..];
            string blobs = Path.Combine(dir, "blobs");
            long bytes = Directory.Exists(blobs) ? new DirectoryInfo(blobs).EnumerateFiles().Sum(f => f.Length) : 0;
            string snaps = Path.Combine(dir, "snapshots");
            var newest = Directory.Exists(snaps) ? new DirectoryInfo(snaps).EnumerateDirectories().OrderByDescending(d => d.LastWriteTimeUtc).FirstOrDefault() : null;
            var files = newest == null ? [] : Directory.EnumerateFileSystemEntries(newest.FullName, "*", SearchOption.AllDirectories)
                .Where(p => !Directory.Exists(p)).Select(p => Path.GetRelativePath(newest.FullName, p).Replace('\\', '/')).Order(StringComparer.Ordinal).ToList();
            repos.Add(new CachedRepo(repo, dir, bytes, files, Directory.GetLastWriteTimeUtc(dir)));
        }
        return repos;
    }

    /// <summary>Deletes a repository's folder; false when it is not in the cache.</summary>
    public bool Remove(string repo)
    {
        string dir = RepoFolder(repo);
        if (!Directory.Exists(dir)) return false;
        Directory.Delete(dir, recursive: true);
        return true;
    }
}
