import { posix } from "node:path";
import { assertSafeRelative } from "../z2m/manifest.js";
import type { SshTransport } from "./ssh.js";

export interface RemoteFile {
  /** Relative to the listed root, "/"-separated. */
  path: string;
  size: number;
  mtime_ms: number;
  mode: number;
}

const HASH_BATCH = 100;

/**
 * Bounds of a data dir: a zigbee2mqtt data dir is a few dozen files a few levels deep. A tree far
 * beyond that is a misconfigured data_dir (an install dir, a home), not something to walk and copy.
 */
export const TREE_LIMITS = { depth: 12, files: 20_000 };

export class TreeTooLargeError extends Error {
  constructor(root: string, what: string) {
    super(`${root} ${what}: this does not look like a zigbee2mqtt data dir (check data_dir)`);
    this.name = "TreeTooLargeError";
  }
}

/** Every regular file under `root`, skipping what `exclude` matches (directories prune their subtree). */
export async function listTree(
  ssh: SshTransport,
  root: string,
  exclude: (relativePath: string) => boolean,
  onSkipped: (path: string, why: string) => void = () => {},
  limits = TREE_LIMITS,
): Promise<RemoteFile[]> {
  const files: RemoteFile[] = [];
  const queue = [""];
  while (queue.length > 0) {
    const rel = queue.shift() as string;
    if (rel.split("/").length > limits.depth)
      throw new TreeTooLargeError(root, `has directories more than ${limits.depth} levels deep (${rel})`);
    const entries = await ssh.readdir(rel ? posix.join(root, rel) : root);
    for (const entry of entries) {
      const path = rel ? `${rel}/${entry.name}` : entry.name;
      if (exclude(path)) continue;
      // Line-based tools (sha256sum) and the staging scripts cannot carry a newline in a name.
      if (entry.name.includes("\n")) {
        onSkipped(path, "name contains a newline");
        continue;
      }
      if (entry.stats.type === "directory") queue.push(path);
      else if (entry.stats.type === "file")
        files.push({ path, size: entry.stats.size, mtime_ms: entry.stats.mtimeMs, mode: entry.stats.mode });
      else onSkipped(path, `is a ${entry.stats.type}, not a regular file`);
      if (files.length > limits.files)
        throw new TreeTooLargeError(root, `holds more than ${limits.files} files`);
    }
  }
  return files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/**
 * sha256 of files on the node, computed there (`sha256sum`, in GNU coreutils and BusyBox), so that
 * unchanged content is recognised without transferring it. Files that vanished meanwhile are
 * simply absent from the result.
 */
export async function hashRemote(
  ssh: SshTransport,
  root: string,
  paths: string[],
): Promise<Map<string, string>> {
  const hashes = new Map<string, string>();
  for (let i = 0; i < paths.length; i += HASH_BATCH) {
    const batch = paths.slice(i, i + HASH_BATCH);
    for (const p of batch) assertSafeRelative(p);
    const result = await ssh.exec(["sha256sum", "--", ...batch.map((p) => posix.join(root, p))], {
      timeoutMs: 120_000,
      maxOutputBytes: 4 * 1024 * 1024,
    });
    if (result.code !== 0 && result.stdout.trim() === "") {
      throw new Error(
        `sha256sum failed on ${ssh.nodeId}: ${result.stderr.trim().slice(-300) || `exit ${result.code}`}`,
      );
    }
    const prefix = root.endsWith("/") ? root : `${root}/`;
    for (const line of result.stdout.split("\n")) {
      const parsed = parseHashLine(line);
      if (parsed?.path.startsWith(prefix)) hashes.set(parsed.path.slice(prefix.length), parsed.sha256);
    }
  }
  return hashes;
}

/**
 * One line of `sha256sum` output. GNU coreutils escapes a name holding a backslash, newline or
 * carriage return: the line then starts with a backslash and the name has those characters
 * escaped. BusyBox prints names as they are. A name read wrong would be missing from the result,
 * and a file missing from a snapshot was deleted on the standby.
 */
export function parseHashLine(line: string): { sha256: string; path: string } | undefined {
  const escaped = line.startsWith("\\");
  const match = /^([0-9a-f]{64}) [ *](.+)$/s.exec(escaped ? line.slice(1) : line);
  if (!match) return undefined;
  const name = match[2] as string;
  const path = escaped
    ? name.replace(/\\(.)/g, (_, c: string) => (c === "n" ? "\n" : c === "r" ? "\r" : c))
    : name;
  return { sha256: match[1] as string, path };
}

export class UnstableFileError extends Error {
  constructor(path: string, attempts: number) {
    super(`${path} kept changing while it was read (${attempts} attempts)`);
    this.name = "UnstableFileError";
  }
}

/**
 * Reads a file whole and only accepts the bytes if the file did not change while they were read:
 * same size and modification time before and after, and as many bytes as the size said.
 * zigbee2mqtt replaces database.db and coordinator_backup.json by rename, which this sees as a
 * change, so a half-written file is never returned; it retries instead.
 */
export async function readStable(
  ssh: SshTransport,
  path: string,
  options: { attempts?: number; maxBytes?: number } = {},
): Promise<{ data: Buffer; size: number; mtime_ms: number; mode: number }> {
  const attempts = options.attempts ?? 6;
  for (let attempt = 1; attempt <= attempts; attempt++) {
    const before = await ssh.stat(path);
    const data = await ssh.readFile(path, { maxBytes: options.maxBytes ?? 64 * 1024 * 1024 });
    const after = await ssh.stat(path);
    if (before.size === after.size && before.mtimeMs === after.mtimeMs && data.length === after.size) {
      return { data, size: after.size, mtime_ms: after.mtimeMs, mode: after.mode };
    }
    await new Promise((r) => setTimeout(r, 50 * attempt));
  }
  throw new UnstableFileError(path, attempts);
}
