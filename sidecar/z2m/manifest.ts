import picomatch from "picomatch";

/** One file of a zigbee2mqtt data dir as the controller knows it. */
export interface ManifestEntry {
  /** Relative to the data dir, "/"-separated, never starting with "/" or containing "..". */
  path: string;
  size: number;
  mtime_ms: number;
  mode: number;
  sha256: string;
}

export interface Manifest {
  files: ManifestEntry[];
}

/**
 * Files that never belong in a snapshot whatever the config says: our own temp files and
 * zigbee2mqtt's half-written ones (it writes `<file>.tmp` and renames).
 */
export const ALWAYS_EXCLUDED = [".z2mha-*", "*.tmp", "*.z2mha-tmp"];

/**
 * Matcher for the configured exclude patterns. A pattern without "/" matches a file or directory
 * name at any depth (so `log` skips the whole log/ tree, like rsync's --exclude); a pattern with
 * "/" is matched against the path relative to the data dir.
 */
export function excludeMatcher(patterns: string[]): (relativePath: string) => boolean {
  const all = [...ALWAYS_EXCLUDED, ...patterns];
  const byName = picomatch(
    all.filter((p) => !p.includes("/")),
    { dot: true },
  );
  const byPath = picomatch(
    all.filter((p) => p.includes("/")).map((p) => p.replace(/^\/+/, "")),
    { dot: true },
  );
  return (relativePath: string) => {
    const parts = relativePath.split("/");
    if (parts.some((part) => byName(part))) return true;
    for (let i = 1; i <= parts.length; i++) if (byPath(parts.slice(0, i).join("/"))) return true;
    return false;
  };
}

/** Refuses paths that could escape the directory they are joined to. */
export function assertSafeRelative(path: string): void {
  if (
    path === "" ||
    path.startsWith("/") ||
    path.split("/").some((p) => p === ".." || p === "." || p === "")
  ) {
    throw new Error(`unsafe relative path ${JSON.stringify(path)}`);
  }
  if (path.includes("\0")) throw new Error("path contains NUL");
}

export interface ManifestDiff {
  added: ManifestEntry[];
  changed: ManifestEntry[];
  removed: ManifestEntry[];
  unchanged: ManifestEntry[];
}

/** What it takes to turn `from` into `to`, by content (sha256), not by timestamps. */
export function diffManifests(from: Manifest | undefined, to: Manifest): ManifestDiff {
  const before = new Map((from?.files ?? []).map((f) => [f.path, f]));
  const diff: ManifestDiff = { added: [], changed: [], removed: [], unchanged: [] };
  for (const file of to.files) {
    const old = before.get(file.path);
    if (!old) diff.added.push(file);
    else if (old.sha256 !== file.sha256) diff.changed.push(file);
    else diff.unchanged.push(file);
    before.delete(file.path);
  }
  diff.removed = [...before.values()];
  return diff;
}

export function sortManifest(manifest: Manifest): Manifest {
  return { files: [...manifest.files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0)) };
}
