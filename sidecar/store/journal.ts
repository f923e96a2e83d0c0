import {
  closeSync,
  existsSync,
  fstatSync,
  fsyncSync,
  ftruncateSync,
  openSync,
  readFileSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import type { OperationRecord, OperationStatus, StepRecord } from "../types.js";
import { fsyncDir, writeFileAtomic } from "./atomic.js";

/** One line of the operations journal. */
export type JournalEntry =
  | { t: "op-start"; ts: string; op: Omit<OperationRecord, "steps" | "status"> }
  | { t: "step-start"; ts: string; op_id: string; step: string; rollback?: boolean }
  | {
      t: "step-end";
      ts: string;
      op_id: string;
      step: string;
      status: StepRecord["status"];
      duration_ms: number;
      detail?: string;
      error?: string;
      rollback?: boolean;
    }
  | {
      t: "op-end";
      ts: string;
      op_id: string;
      status: Exclude<OperationStatus, "running">;
      result?: Record<string, unknown>;
      error?: OperationRecord["error"];
    };

export interface JournalProblem {
  line: number;
  kind: "truncated-tail" | "corrupt-line";
  bytes: number;
}

export interface ReplayResult {
  operations: OperationRecord[];
  problems: JournalProblem[];
}

/**
 * Append-only, fsync'ed record of every operation and step. Written before and after each step so
 * that a sidecar killed at any instant knows on restart what was running and how far it got.
 * Power loss can leave a torn last line: it is cut off (kept aside in `<file>.torn`) and reported.
 */
export class Journal {
  #fd: number;
  readonly problems: JournalProblem[];

  private constructor(
    readonly path: string,
    fd: number,
    problems: JournalProblem[],
  ) {
    this.#fd = fd;
    this.problems = problems;
  }

  static open(path: string): Journal {
    const problems = repairTail(path);
    const created = !existsSync(path);
    const fd = openSync(path, "a", 0o600);
    if (created) fsyncDir(dirOf(path));
    return new Journal(path, fd, problems);
  }

  append(entry: JournalEntry): void {
    const line = Buffer.from(`${JSON.stringify(entry)}\n`);
    let offset = 0;
    while (offset < line.length) offset += writeSync(this.#fd, line, offset, line.length - offset);
    fsyncSync(this.#fd);
  }

  close(): void {
    if (this.#fd >= 0) {
      closeSync(this.#fd);
      this.#fd = -1;
    }
  }

  /** Rebuilds operation records from the file; the journal stays the source of truth. */
  replay(): ReplayResult {
    return replayText(readFileSync(this.path, "utf8"), this.problems);
  }

  /**
   * Rewrites the journal keeping only the entries of the last `keep` operations (plus any
   * still unfinished), atomically, so the file does not grow without bound.
   */
  compact(keep: number): void {
    const text = readFileSync(this.path, "utf8");
    const { operations } = replayText(text, []);
    const keepIds = new Set(
      operations
        .slice(-keep)
        .map((o) => o.id)
        .concat(operations.filter((o) => o.status === "running").map((o) => o.id)),
    );
    const kept = text.split("\n").filter((line) => {
      if (line.trim() === "") return false;
      try {
        const entry = JSON.parse(line) as JournalEntry;
        return keepIds.has(entry.t === "op-start" ? entry.op.id : entry.op_id);
      } catch {
        return false;
      }
    });
    this.close();
    writeFileAtomic(this.path, kept.length ? `${kept.join("\n")}\n` : "", 0o600);
    this.#fd = openSync(this.path, "a", 0o600);
  }

  size(): number {
    return fstatSync(this.#fd).size;
  }
}

function dirOf(path: string): string {
  const i = path.lastIndexOf("/");
  return i <= 0 ? "/" : path.slice(0, i);
}

/** Cuts a torn last line off the journal so later appends start on a clean line. */
function repairTail(path: string): JournalProblem[] {
  if (!existsSync(path)) return [];
  const data = readFileSync(path);
  if (data.length === 0 || data[data.length - 1] === 0x0a) return [];
  const lastNewline = data.lastIndexOf(0x0a);
  const keep = lastNewline + 1;
  const torn = data.subarray(keep);
  const lineNumber = data.subarray(0, keep).toString("utf8").split("\n").length;
  writeFileSync(`${path}.torn`, torn, { mode: 0o600 });
  const fd = openSync(path, "r+");
  try {
    ftruncateSync(fd, keep);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  return [{ line: lineNumber, kind: "truncated-tail", bytes: torn.length }];
}

function replayText(text: string, problems: JournalProblem[]): ReplayResult {
  const found = [...problems];
  const byId = new Map<string, OperationRecord>();
  const lines = text.split("\n");
  lines.forEach((line, index) => {
    if (line.trim() === "") return;
    let entry: JournalEntry;
    try {
      entry = JSON.parse(line) as JournalEntry;
    } catch {
      found.push({ line: index + 1, kind: "corrupt-line", bytes: line.length });
      return;
    }
    apply(byId, entry);
  });
  return { operations: [...byId.values()], problems: found };
}

function apply(ops: Map<string, OperationRecord>, entry: JournalEntry): void {
  if (entry.t === "op-start") {
    ops.set(entry.op.id, { ...entry.op, status: "running", steps: [] });
    return;
  }
  const op = ops.get(entry.op_id);
  if (!op) return;
  switch (entry.t) {
    case "step-start":
      op.steps.push({
        name: entry.step,
        status: "running",
        started_at: entry.ts,
        ...(entry.rollback ? { rollback: true } : {}),
      });
      break;
    case "step-end": {
      const step = [...op.steps].reverse().find((s) => s.name === entry.step && s.status === "running");
      if (!step) break;
      step.status = entry.status;
      step.finished_at = entry.ts;
      step.duration_ms = entry.duration_ms;
      if (entry.detail !== undefined) step.detail = entry.detail;
      if (entry.error !== undefined) step.error = entry.error;
      break;
    }
    case "op-end":
      op.status = entry.status;
      op.finished_at = entry.ts;
      op.duration_ms = Date.parse(entry.ts) - Date.parse(op.started_at);
      if (entry.result) op.result = entry.result;
      if (entry.error) op.error = entry.error;
      break;
  }
}
