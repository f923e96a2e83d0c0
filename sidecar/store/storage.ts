import { closeSync, fsyncSync, openSync, rmSync, statfsSync, writeSync } from "node:fs";
import { join } from "node:path";
import { formatSize } from "../config/size.js";

export type StorageProblemCode = "full" | "low_space" | "read_only" | "io_error";

export interface StorageProblem {
  code: StorageProblemCode;
  message: string;
  since: string;
  /** Writes held in memory until they can reach the disk: lost if the process dies meanwhile. */
  pending: string[];
}

/** What an fs error on a write says about the state dir; undefined for errors that are not about storage. */
export function storageProblemOf(error: unknown): StorageProblemCode | undefined {
  switch ((error as NodeJS.ErrnoException | undefined)?.code) {
    case "ENOSPC":
    case "EDQUOT":
      return "full";
    case "EROFS":
      return "read_only";
    case "EIO":
      return "io_error";
    default:
      return undefined;
  }
}

/** A write to the state dir that could not be made because of the storage, not a bug. */
export class StorageError extends Error {
  constructor(
    readonly what: string,
    readonly problem: StorageProblemCode,
    cause: unknown,
  ) {
    super(`cannot write ${what}: ${(cause as Error).message}`, { cause });
    this.name = "StorageError";
  }
}

/** Something holding writes back while the disk refuses them; returns true once nothing is pending. */
export interface PendingWrites {
  name: string;
  flush(): boolean;
}

export interface StorageHealthOptions {
  /** Below this much free space no new mutating operation starts (before the disk is full). */
  minFreeBytes: number;
  /** How often a degraded state dir is tried again (default 5 s). */
  retryMs?: number;
  /** How often a healthy state dir's free space is looked at (default 30 s). */
  watchMs?: number;
  onChange?: (problem: StorageProblem | undefined) => void;
}

const DESCRIBE: Record<StorageProblemCode, string> = {
  full: "the controller's state dir is full",
  low_space: "the controller's state dir is almost full",
  read_only: "the controller's state dir is read-only",
  io_error: "the controller's state dir gives I/O errors",
};

/**
 * Whether the state dir takes writes. A full disk must not take the sidecar down: writers that
 * hit ENOSPC (the journal, the state file) keep what they could not write in memory and register
 * here; the sidecar stays up, refuses new mutating operations, and once space returns flushes
 * what was held back, in order, and resumes by itself.
 */
export class StorageHealth {
  #problem: StorageProblem | undefined;
  readonly #pending = new Set<PendingWrites>();
  #timer: NodeJS.Timeout | undefined;

  constructor(
    readonly dir: string,
    private readonly options: StorageHealthOptions,
  ) {}

  get problem(): StorageProblem | undefined {
    return this.#problem ? { ...this.#problem, pending: this.#pendingNames() } : undefined;
  }

  /** A writer's write failed because of the storage; it keeps the data and registers it. */
  failed(code: StorageProblemCode, detail: string, pending?: PendingWrites): void {
    if (pending) this.#pending.add(pending);
    this.#set(code, detail);
    this.#arm();
  }

  /**
   * Looks again now: free space, then the held-back writes. Cheap (a statfs) while healthy; the
   * runner calls it before each mutating operation so that one never starts on a full disk.
   */
  check(): StorageProblem | undefined {
    const free = this.freeBytes();
    if (this.#pending.size > 0) {
      for (const writes of [...this.#pending]) {
        if (safeFlush(writes)) this.#pending.delete(writes);
      }
    }
    if (this.#pending.size > 0) {
      // Still refused: keep the problem as the writers last saw it.
      if (!this.#problem) this.#set("full", "held-back writes cannot be written yet");
      return this.problem;
    }
    if (free !== undefined && free < this.options.minFreeBytes) {
      const code = this.#problem?.code === "full" ? "full" : "low_space";
      this.#set(
        code,
        `${formatSize(free)} free, below storage.min_free (${formatSize(this.options.minFreeBytes)})`,
      );
      this.#arm();
      return this.problem;
    }
    if (this.#problem && (this.#problem.code === "read_only" || this.#problem.code === "io_error")) {
      const probe = this.#probeWrite();
      if (probe) {
        this.#set(probe, "a test write still fails");
        return this.problem;
      }
    }
    if (this.#problem) {
      this.#problem = undefined;
      this.options.onChange?.(undefined);
    }
    return undefined;
  }

  freeBytes(): number | undefined {
    try {
      const stats = statfsSync(this.dir);
      return Number(stats.bavail) * Number(stats.bsize);
    } catch {
      return undefined;
    }
  }

  /** Watches free space while healthy and retries while degraded; the timer never keeps the process up. */
  start(): void {
    this.#arm();
  }

  stop(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #arm(): void {
    clearTimeout(this.#timer);
    const delay = this.#problem ? (this.options.retryMs ?? 5_000) : (this.options.watchMs ?? 30_000);
    this.#timer = setTimeout(() => {
      this.check();
      this.#arm();
    }, delay);
    this.#timer.unref();
  }

  #set(code: StorageProblemCode, detail: string): void {
    const before = this.#problem;
    const message = `${DESCRIBE[code]}: ${detail}`;
    this.#problem = {
      code,
      message,
      since: before?.since ?? new Date().toISOString(),
      pending: [],
    };
    if (!before || before.code !== code || before.message !== message) this.options.onChange?.(this.problem);
  }

  #pendingNames(): string[] {
    return [...this.#pending].map((p) => p.name);
  }

  /** Writes, fsyncs and removes a small file; returns the problem when that fails. */
  #probeWrite(): StorageProblemCode | undefined {
    const path = join(this.dir, `.storage-probe.${process.pid}`);
    try {
      const fd = openSync(path, "w", 0o600);
      try {
        writeSync(fd, Buffer.alloc(4096));
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      return undefined;
    } catch (error) {
      return storageProblemOf(error) ?? "io_error";
    } finally {
      rmSync(path, { force: true });
    }
  }
}

function safeFlush(writes: PendingWrites): boolean {
  try {
    return writes.flush();
  } catch {
    return false;
  }
}
