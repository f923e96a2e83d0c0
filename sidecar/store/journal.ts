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
import { z } from "zod";
import {
  OPERATION_KINDS,
  type OperationRecord,
  type OperationStatus,
  STEP_STATUSES,
  type StepRecord,
} from "../types.js";
import { fsyncDir, writeFileAtomic } from "./atomic.js";
import { legacyStepKey } from "./journal-migrations.js";
import { type PendingWrites, type StorageHealth, storageProblemOf } from "./storage.js";

/**
 * The journal's format. 1: no header line, steps without keys (before 0.2). 2: a header line
 * `{"t":"journal","version":2}` opens the file, every step carries its stable key.
 */
export const JOURNAL_VERSION = 2;

/** One line of the operations journal. */
export type JournalEntry =
  | { t: "journal"; version: number }
  | { t: "op-start"; ts: string; op: Omit<OperationRecord, "steps" | "status"> }
  | { t: "step-start"; ts: string; op_id: string; step: string; key: string; rollback?: boolean }
  | {
      t: "step-end";
      ts: string;
      op_id: string;
      step: string;
      key: string;
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

const operationKind = z.enum(OPERATION_KINDS);
const stepStatus = z.enum(STEP_STATUSES);
const operationError = z.object({
  step: z.string().optional(),
  message: z.string(),
  output: z.string().optional(),
});

/**
 * What a journal line must look like to be replayed. A line that parses as JSON but not as an
 * entry (`null`, `{"t":"op-start"}`, a field of the wrong type) is a corrupt line like any other:
 * skipped and reported, never a TypeError at start-up. `key` is optional here because version 1
 * journals have none; the migration fills it in.
 */
const entrySchema = z.discriminatedUnion("t", [
  z.object({ t: z.literal("journal"), version: z.number().int().min(1) }),
  z.object({
    t: z.literal("op-start"),
    ts: z.string(),
    op: z.object({
      id: z.string().min(1),
      kind: operationKind,
      mutating: z.boolean(),
      started_at: z.string(),
      trigger: z.string(),
      params: z.record(z.string(), z.unknown()),
      reason: z.string().optional(),
    }),
  }),
  z.object({
    t: z.literal("step-start"),
    ts: z.string(),
    op_id: z.string(),
    step: z.string(),
    key: z.string().min(1).optional(),
    rollback: z.boolean().optional(),
  }),
  z.object({
    t: z.literal("step-end"),
    ts: z.string(),
    op_id: z.string(),
    step: z.string(),
    key: z.string().min(1).optional(),
    status: stepStatus,
    duration_ms: z.number(),
    detail: z.string().optional(),
    error: z.string().optional(),
    rollback: z.boolean().optional(),
  }),
  z.object({
    t: z.literal("op-end"),
    ts: z.string(),
    op_id: z.string(),
    status: z.enum(["succeeded", "failed", "rolled_back", "interrupted"]),
    result: z.record(z.string(), z.unknown()).optional(),
    error: operationError.optional(),
  }),
]);

type ParsedEntry = z.infer<typeof entrySchema>;

export interface JournalProblem {
  line: number;
  kind: "truncated-tail" | "corrupt-line" | "newer-version";
  bytes: number;
  /** What was wrong with the line (for a corrupt one) or where the torn tail went. */
  detail?: string;
}

export interface ReplayResult {
  operations: OperationRecord[];
  problems: JournalProblem[];
}

/** Lines held in memory while the disk refuses them; beyond this the oldest are dropped. */
const MAX_BACKLOG = 20_000;

export interface JournalOptions {
  /** Told when a write fails and when held-back lines are written after all. */
  storage?: StorageHealth;
  /** Writes and fsyncs `data` at the end of the file; replaceable so tests can refuse writes. */
  write?: (fd: number, data: Buffer) => void;
}

function writeAndSync(fd: number, data: Buffer): void {
  let offset = 0;
  while (offset < data.length) offset += writeSync(fd, data, offset, data.length - offset);
  fsyncSync(fd);
}

/**
 * Append-only, fsync'ed record of every operation and step. Written before and after each step so
 * that a sidecar killed at any instant knows on restart what was running and how far it got.
 * Power loss can leave a torn last line: it is cut off (kept aside in `<file>.torn`) and reported.
 * A write the disk refuses (full, read-only) never throws: the line is kept in memory, in order,
 * and written as soon as the disk takes it again (see StorageHealth).
 */
export class Journal implements PendingWrites {
  readonly name = "operations journal";
  #fd: number;
  /** Bytes of the file known to be whole lines on disk. */
  #size: number;
  readonly #backlog: string[] = [];
  #dropped = 0;
  readonly problems: JournalProblem[];

  private readonly storage: StorageHealth | undefined;
  readonly #writeAndSync: (fd: number, data: Buffer) => void;

  private constructor(
    readonly path: string,
    fd: number,
    problems: JournalProblem[],
    options: JournalOptions,
  ) {
    this.storage = options.storage;
    this.#writeAndSync = options.write ?? writeAndSync;
    this.#fd = fd;
    this.#size = fstatSync(fd).size;
    this.problems = problems;
  }

  static open(path: string, options: JournalOptions = {}): Journal {
    const problems = repairTail(path);
    const created = !existsSync(path);
    const fd = openSync(path, "a", 0o600);
    if (created) fsyncDir(dirOf(path));
    const journal = new Journal(path, fd, problems, options);
    if (journal.#size === 0) journal.append({ t: "journal", version: JOURNAL_VERSION });
    return journal;
  }

  /** Appends one entry; false when it is held in memory because the disk refused it. */
  append(entry: JournalEntry): boolean {
    const line = `${JSON.stringify(entry)}\n`;
    if (this.#backlog.length === 0 && this.#write(line)) return true;
    this.#hold(line);
    return false;
  }

  /** Writes held-back lines; true when nothing is held back any more. */
  flush(): boolean {
    if (this.#backlog.length === 0) return true;
    if (!this.#write(this.#backlog.join(""))) return false;
    this.#backlog.length = 0;
    return true;
  }

  /** Entries not on disk yet, and how many were dropped because too many were held. */
  get held(): { lines: number; dropped: number } {
    return { lines: this.#backlog.length, dropped: this.#dropped };
  }

  #write(text: string): boolean {
    const data = Buffer.from(text);
    try {
      this.#writeAndSync(this.#fd, data);
      this.#size += data.length;
      return true;
    } catch (error) {
      // A write cut short leaves part of a line: take it back so the file ends on a whole line.
      try {
        ftruncateSync(this.#fd, this.#size);
      } catch {
        // ftruncate needs no space; if even it fails, the next start's tail repair cuts the rest.
      }
      this.storage?.failed(
        storageProblemOf(error) ?? "io_error",
        `${this.#backlog.length + 1} journal entries held in memory (${(error as Error).message})`,
        this,
      );
      return false;
    }
  }

  #hold(line: string): void {
    this.#backlog.push(line);
    if (this.#backlog.length > MAX_BACKLOG) {
      this.#backlog.shift();
      this.#dropped++;
    }
  }

  close(): void {
    this.flush();
    if (this.#fd >= 0) {
      closeSync(this.#fd);
      this.#fd = -1;
    }
  }

  /** Rebuilds operation records from the file (and what is held back); the journal stays the source of truth. */
  replay(): ReplayResult {
    return replayText(readFileSync(this.path, "utf8") + this.#backlog.join(""), this.problems);
  }

  /**
   * Rewrites the journal keeping only the entries of the last `keep` operations (plus any
   * still unfinished), atomically, so the file does not grow without bound. Skipped (false) while
   * lines are held back or when the disk refuses the new file: the old one stays as it was.
   */
  compact(keep: number): boolean {
    if (!this.flush()) return false;
    const text = readFileSync(this.path, "utf8");
    const { operations } = replayText(text, []);
    const keepIds = new Set(
      operations
        .slice(-keep)
        .map((o) => o.id)
        .concat(operations.filter((o) => o.status === "running").map((o) => o.id)),
    );
    let legacy = true;
    const kept: string[] = [JSON.stringify({ t: "journal", version: JOURNAL_VERSION })];
    const byId = new Map(operations.map((o) => [o.id, o]));
    for (const line of text.split("\n")) {
      const entry = parseLine(line);
      if (!entry) continue;
      if (entry.t === "journal") {
        legacy = entry.version < 2;
        continue;
      }
      const id = entry.t === "op-start" ? entry.op.id : entry.op_id;
      if (!keepIds.has(id)) continue;
      // The new file says version 2, so version-1 steps get their keys written in now.
      if (legacy && (entry.t === "step-start" || entry.t === "step-end") && entry.key === undefined) {
        const op = byId.get(id);
        kept.push(
          JSON.stringify({ ...entry, key: op ? legacyStepKey(entry.step, op, entry.rollback) : "step" }),
        );
      } else kept.push(line);
    }
    try {
      writeFileAtomic(this.path, `${kept.join("\n")}\n`, 0o600);
    } catch (error) {
      this.storage?.failed(
        storageProblemOf(error) ?? "io_error",
        `journal compaction: ${(error as Error).message}`,
      );
      return false;
    }
    closeSync(this.#fd);
    this.#fd = openSync(this.path, "a", 0o600);
    this.#size = fstatSync(this.#fd).size;
    return true;
  }

  size(): number {
    return this.#size;
  }
}

function dirOf(path: string): string {
  const i = path.lastIndexOf("/");
  return i <= 0 ? "/" : path.slice(0, i);
}

/**
 * Cuts a torn last line off the journal so later appends start on a clean line. The torn bytes
 * are kept in `<file>.torn` when the disk takes them; cutting needs no space, so a full disk
 * cannot stop the sidecar from starting (the bytes are then only reported).
 */
function repairTail(path: string): JournalProblem[] {
  if (!existsSync(path)) return [];
  const data = readFileSync(path);
  if (data.length === 0 || data[data.length - 1] === 0x0a) return [];
  const lastNewline = data.lastIndexOf(0x0a);
  const keep = lastNewline + 1;
  const torn = data.subarray(keep);
  const lineNumber = data.subarray(0, keep).toString("utf8").split("\n").length;
  let detail = `kept in ${path}.torn`;
  try {
    writeFileSync(`${path}.torn`, torn, { mode: 0o600 });
  } catch (error) {
    detail = `not kept (${(error as Error).message}); it began ${JSON.stringify(torn.subarray(0, 120).toString("utf8"))}`;
  }
  const fd = openSync(path, "r+");
  try {
    ftruncateSync(fd, keep);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  return [{ line: lineNumber, kind: "truncated-tail", bytes: torn.length, detail }];
}

function parseLine(line: string): ParsedEntry | undefined {
  if (line.trim() === "") return undefined;
  try {
    const result = entrySchema.safeParse(JSON.parse(line));
    return result.success ? result.data : undefined;
  } catch {
    return undefined;
  }
}

function replayText(text: string, problems: JournalProblem[]): ReplayResult {
  const found = [...problems];
  const byId = new Map<string, OperationRecord>();
  // A file without a header line was written by version 1.
  let version = 1;
  text.split("\n").forEach((line, index) => {
    if (line.trim() === "") return;
    let json: unknown;
    try {
      json = JSON.parse(line);
    } catch {
      found.push({ line: index + 1, kind: "corrupt-line", bytes: line.length, detail: "not JSON" });
      return;
    }
    const parsed = entrySchema.safeParse(json);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      found.push({
        line: index + 1,
        kind: "corrupt-line",
        bytes: line.length,
        detail: `not a journal entry (${issue ? `${issue.path.join(".") || "entry"}: ${issue.message}` : "invalid"})`,
      });
      return;
    }
    const entry = parsed.data;
    if (entry.t === "journal") {
      version = entry.version;
      if (version > JOURNAL_VERSION)
        found.push({
          line: index + 1,
          kind: "newer-version",
          bytes: line.length,
          detail: `written by a newer sidecar (format ${version}, this one reads up to ${JOURNAL_VERSION})`,
        });
      return;
    }
    apply(byId, entry, version);
  });
  return { operations: [...byId.values()], problems: found };
}

function apply(
  ops: Map<string, OperationRecord>,
  entry: Exclude<ParsedEntry, { t: "journal" }>,
  version: number,
) {
  if (entry.t === "op-start") {
    ops.set(entry.op.id, { ...entry.op, status: "running", steps: [] });
    return;
  }
  const op = ops.get(entry.op_id);
  if (!op) return;
  switch (entry.t) {
    case "step-start":
      op.steps.push({
        key: entry.key ?? (version < 2 ? legacyStepKey(entry.step, op, entry.rollback) : "step"),
        name: entry.step,
        status: "running",
        started_at: entry.ts,
        ...(entry.rollback ? { rollback: true } : {}),
      });
      break;
    case "step-end": {
      const step = [...op.steps]
        .reverse()
        .find((s) => (entry.key ? s.key === entry.key : s.name === entry.step) && s.status === "running");
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
