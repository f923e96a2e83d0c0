import {
  lstatSync,
  mkdirSync,
  readFileSync,
  readlinkSync,
  rmdirSync,
  rmSync,
  statSync,
  symlinkSync,
} from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";

/** Another sidecar holds the state dir: two controllers on one state would split the cluster. */
export class StateDirLockedError extends Error {
  constructor(
    readonly dir: string,
    readonly holder: LockHolder,
  ) {
    super(
      `${dir} is in use by another sidecar (pid ${holder.pid} on ${holder.host}, since ${holder.since}): ` +
        "two sidecars on one state dir would both run the failover policy against the same nodes. " +
        `Stop that one first (or, if it is gone for good and ran on another host, remove ${join(dir, LOCK_FILE)}).`,
    );
    this.name = "StateDirLockedError";
  }
}

export interface LockHolder {
  pid: number;
  host: string;
  /** The holder's process start time (Linux clock ticks since boot), so a reused pid is not mistaken for it. */
  start?: string;
  since: string;
}

export const LOCK_FILE = "sidecar.lock";

/** A process's start time as the kernel counts it; undefined off Linux or when it is gone. */
function processStart(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Field 22, counted after the parenthesised command name (which may hold spaces).
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
  } catch {
    return undefined;
  }
}

/** Host names are cut so that the whole link stays short (stored in the inode, even on a full disk). */
function shortHost(): string {
  return hostname().slice(0, 40);
}

function alive(holder: LockHolder): boolean {
  if (holder.host !== shortHost()) return true; // cannot tell: a shared state dir on another host counts as held
  if (holder.pid === process.pid) return false; // our own pid from an earlier life (a container restarted)
  try {
    process.kill(holder.pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EPERM") return false;
  }
  const start = processStart(holder.pid);
  return holder.start === undefined || start === undefined || start === holder.start;
}

/** The lock is a symlink whose target names the holder: `pid:start:host`. */
function readHolder(path: string): LockHolder | undefined {
  try {
    const [pid, start, ...host] = readlinkSync(path).split(":");
    const since = new Date(lstatSync(path).mtimeMs).toISOString();
    if (!pid || !/^\d+$/.test(pid)) return undefined;
    return { pid: Number(pid), host: host.join(":"), since, ...(start ? { start } : {}) };
  } catch {
    return undefined;
  }
}

export interface StateDirLock {
  holder: LockHolder;
  release(): void;
}

/**
 * Takes the state dir for this process. `sidecar.lock` is a symbolic link naming the holder (pid,
 * process start time, host): made in one atomic step, and short enough to live in the inode, so
 * that a sidecar can start (and report) on a disk that is full. A lock left by a process that is
 * gone (a crash, a power loss, a container restart that reused the pid) is taken over; one held
 * by a live process throws StateDirLockedError. Taking over a stale lock happens under a second,
 * short-lived lock (a directory, made atomically), so two sidecars starting at once cannot both
 * take it.
 */
export function lockStateDir(dir: string): StateDirLock {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const path = join(dir, LOCK_FILE);
  const start = processStart(process.pid);
  const target = `${process.pid}:${start ?? ""}:${shortHost()}`;
  for (let attempt = 0; attempt < 50; attempt++) {
    try {
      symlinkSync(target, path);
      const me = readHolder(path) as LockHolder;
      return {
        holder: me,
        release: () => {
          try {
            if (readlinkSync(path) === target) rmSync(path, { force: true });
          } catch {
            // already gone
          }
        },
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    }
    const holder = readHolder(path);
    if (holder && alive(holder)) throw new StateDirLockedError(dir, holder);
    takeOverStale(path, holder);
  }
  throw new Error(`could not take ${path}: it keeps changing`);
}

function takeOverStale(path: string, seen: LockHolder | undefined): void {
  const guard = `${path}.takeover`;
  try {
    mkdirSync(guard);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    // Someone else is taking it over; a guard left by a crash mid-takeover expires.
    try {
      if (Date.now() - statSync(guard).mtimeMs > 10_000) rmdirSync(guard);
    } catch {
      // gone meanwhile
    }
    pause(20);
    return;
  }
  try {
    const now = readHolder(path);
    const same =
      now === undefined
        ? seen === undefined
        : seen !== undefined && now.pid === seen.pid && now.start === seen.start;
    if (same && !(now && alive(now))) rmSync(path, { force: true });
  } finally {
    rmdirSync(guard);
  }
}

/** A short synchronous pause: the lock is taken once at start-up, before anything else runs. */
function pause(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}
