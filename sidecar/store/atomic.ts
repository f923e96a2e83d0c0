import { randomBytes } from "node:crypto";
import {
  closeSync,
  type Dirent,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeSync,
} from "node:fs";
import { basename, dirname, join } from "node:path";

/** fsync a directory so that a rename inside it survives power loss. */
export function fsyncDir(dir: string): void {
  const fd = openSync(dir, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Replaces `path` with `data` so that, whatever instant the process or the machine dies, the file
 * holds either the old content or the new one, never a mix: write a temp file in the same
 * directory, fsync it, rename it over the target, fsync the directory.
 */
export function writeFileAtomic(path: string, data: string | Uint8Array, mode = 0o644): void {
  const dir = dirname(path);
  mkdirSync(dir, { recursive: true });
  const temp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`);
  const fd = openSync(temp, "wx", mode);
  try {
    const buffer = typeof data === "string" ? Buffer.from(data) : data;
    let offset = 0;
    while (offset < buffer.length) offset += writeSync(fd, buffer, offset, buffer.length - offset);
    fsyncSync(fd);
  } catch (error) {
    closeSync(fd);
    rmSync(temp, { force: true });
    throw error;
  }
  closeSync(fd);
  try {
    renameSync(temp, path);
  } catch (error) {
    rmSync(temp, { force: true });
    throw error;
  }
  fsyncDir(dir);
}

/** `.<name>.<pid>.<8 hex>.tmp`, the temp files writeFileAtomic makes. */
const TEMP_NAME = /^\..+\.(\d+)\.[0-9a-f]{8}\.tmp$/;

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: the pid exists but belongs to someone else; not ours to judge.
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * Removes, under `dir`, the temp files of writes whose process died before the rename (a
 * SIGKILL or a power loss mid-write). The target files are intact, so these are only litter, but
 * left alone they pile up in the state dir forever. A file whose pid is still running is kept:
 * that write may be in flight. Returns the paths removed.
 */
export function removeOrphanTemps(dir: string): string[] {
  const removed: string[] = [];
  let entries: Dirent[];
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return removed;
    throw error;
  }
  for (const entry of entries) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      removed.push(...removeOrphanTemps(path));
      continue;
    }
    const pid = TEMP_NAME.exec(entry.name)?.[1];
    if (!entry.isFile() || pid === undefined) continue;
    if (Number(pid) === process.pid || isAlive(Number(pid))) continue;
    rmSync(path, { force: true });
    removed.push(path);
  }
  return removed;
}

export function writeJsonAtomic(path: string, value: unknown, mode = 0o644): void {
  writeFileAtomic(path, `${JSON.stringify(value, null, 2)}\n`, mode);
}

/** Undefined when the file does not exist; throws on anything else (unreadable, not JSON). */
export function readJsonIfExists<T>(path: string): T | undefined {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
  return JSON.parse(text) as T;
}
