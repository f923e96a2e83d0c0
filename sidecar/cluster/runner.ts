import { randomUUID } from "node:crypto";
import type { Logger } from "pino";
import type { EventBus } from "../notify/bus.js";
import type { Journal, JournalEntry } from "../store/journal.js";
import type { StorageHealth } from "../store/storage.js";
import type { OperationKind, OperationRecord, StepRecord } from "../types.js";
import { ConflictError, StorageUnavailableError } from "./errors.js";

export interface StepIo<C> {
  ctx: C;
  /** Aborted when the step times out or the sidecar shuts down: stop what you are doing. */
  signal: AbortSignal;
  op: Readonly<OperationRecord>;
}

/** A named unit of work with a timeout. Its return value is the step's short, human-readable detail. */
export interface Step<C> {
  /**
   * Stable machine key ("start-target", "stage:node2"), journaled with the step: recovery and
   * rollback decide by keys, never by the display name, which may change wording.
   */
  key: string;
  /** Display text, e.g. "start node2". */
  name: string;
  timeoutMs: number;
  /** A failure is recorded but the operation goes on (it still ends "failed"); e.g. one standby of several. */
  continueOnFailure?: boolean;
  // biome-ignore lint/suspicious/noConfusingVoidType: lets a step be a plain `async () => {}`
  run(io: StepIo<C>): Promise<string | undefined | void>;
}

export interface OperationPlan<C> {
  kind: OperationKind;
  mutating: boolean;
  trigger: string;
  reason?: string;
  params: Record<string, unknown>;
  ctx: C;
  steps: Step<C>[];
  /**
   * Steps that undo a failure, given the step that failed. Returning an empty list means there is
   * nothing to undo; the operation then ends "failed".
   */
  rollback?: (failed: { step: string; error: Error }, ctx: C) => Step<C>[];
  /** Outcome data recorded with the operation when it ends. */
  result?: (ctx: C) => Record<string, unknown> | undefined;
}

export class StepFailure extends Error {
  constructor(
    message: string,
    readonly output?: string,
  ) {
    super(message);
    this.name = "StepFailure";
  }
}

class StepTimeout extends Error {
  constructor(step: string, ms: number) {
    super(`step "${step}" timed out after ${ms} ms`);
    this.name = "StepTimeout";
  }
}

export interface RunnerOptions {
  history?: OperationRecord[];
  historyLimit?: number;
  /** Asked before each mutating operation: none starts while the state dir refuses writes. */
  storage?: StorageHealth;
  logger?: Logger;
  /** The journal is compacted (between operations) once it is larger than this. */
  compactBytes?: number;
  /** Operations kept by a compaction. */
  compactKeep?: number;
  /**
   * After a step is interrupted (timeout, shutdown), how long the runner waits for it to wind
   * down (its remote command ended through TERM/KILL) before the next step or rollback starts.
   */
  settleMs?: number;
}

/**
 * Runs operations: one mutating operation at a time, every step journaled before and after,
 * progress published on the event bus. Knows nothing of HTTP, SSE or SNMP.
 */
export class OperationRunner {
  readonly #history: OperationRecord[];
  #current: OperationRecord | undefined;
  readonly #shutdown = new AbortController();
  readonly #pending = new Set<Promise<unknown>>();
  readonly #historyLimit: number;

  constructor(
    private readonly journal: Journal,
    private readonly bus: EventBus,
    private readonly options: RunnerOptions = {},
  ) {
    this.#historyLimit = options.historyLimit ?? 200;
    this.#history = (options.history ?? []).slice(-this.#historyLimit);
  }

  get running(): OperationRecord | undefined {
    return this.#current ? structuredClone(this.#current) : undefined;
  }

  list(): OperationRecord[] {
    return structuredClone(this.#history).reverse();
  }

  get(id: string): OperationRecord | undefined {
    const op = this.#history.find((o) => o.id === id);
    return op ? structuredClone(op) : undefined;
  }

  /**
   * Throws StorageUnavailableError while the state dir refuses writes: an operation that cannot
   * be journaled could not be recovered after a crash. Asked before a mutating operation is even
   * planned, so that a full disk is what the caller hears about first.
   */
  assertWritable(): void {
    const problem = this.options.storage?.check();
    if (problem) throw new StorageUnavailableError(problem.message, problem.code);
  }

  /** A running operation of this kind, mutating or not (e.g. a check already under way). */
  runningOf(kind: OperationKind): OperationRecord | undefined {
    const op = this.#history.find((o) => o.kind === kind && o.status === "running");
    return op ? structuredClone(op) : undefined;
  }

  /** Starts the operation and returns its record at once; the operation runs on. */
  start<C>(plan: OperationPlan<C>): OperationRecord {
    const { record, done } = this.#launch(plan);
    this.#pending.add(done);
    // #execute never rejects; the catch is for the impossible case, never an unhandled rejection.
    done
      .catch((error) => this.options.logger?.error({ err: error }, "operation runner failed"))
      .finally(() => this.#pending.delete(done));
    return record;
  }

  /** Runs the operation to its end. */
  async run<C>(plan: OperationPlan<C>): Promise<OperationRecord> {
    const { done } = this.#launch(plan);
    return done;
  }

  /** Records a finished operation without steps, e.g. a policy decision not to act. */
  record(
    kind: OperationKind,
    trigger: string,
    status: "succeeded" | "failed",
    params: Record<string, unknown>,
    result?: Record<string, unknown>,
    reason?: string,
  ): OperationRecord {
    const now = new Date().toISOString();
    const op: OperationRecord = {
      id: newOperationId(),
      kind,
      status: "running",
      mutating: false,
      started_at: now,
      trigger,
      params,
      steps: [],
      ...(reason ? { reason } : {}),
    };
    this.#journal({ t: "op-start", ts: now, op: withoutSteps(op) });
    this.#remember(op);
    op.status = status;
    op.finished_at = now;
    op.duration_ms = 0;
    if (result) op.result = result;
    this.#journal({ t: "op-end", ts: now, op_id: op.id, status, ...(result ? { result } : {}) });
    this.bus.publish({ type: "operation.finished", operation: structuredClone(op) });
    this.#maybeCompact();
    return structuredClone(op);
  }

  /**
   * Journals an entry. Never throws: a full disk holds the entry in memory (the journal and
   * StorageHealth deal with it), and whatever else goes wrong must not leave an operation
   * half-finished in memory (that was how a full disk once left a "running" operation forever).
   */
  #journal(entry: JournalEntry): void {
    try {
      this.journal.append(entry);
    } catch (error) {
      this.options.logger?.error({ err: error, entry: entry.t }, "could not journal an operation entry");
    }
  }

  /** Between operations, a journal over its size is compacted: it no longer grows until a restart. */
  #maybeCompact(): void {
    const limit = this.options.compactBytes;
    if (limit === undefined || this.#current || this.journal.size() <= limit) return;
    try {
      if (this.journal.compact(this.options.compactKeep ?? 500))
        this.options.logger?.info({ bytes: this.journal.size() }, "operations journal compacted");
    } catch (error) {
      this.options.logger?.warn({ err: error }, "journal compaction failed; the journal is kept as it is");
    }
  }

  /** Aborts running steps and waits (bounded) for operations to settle. */
  async shutdown(deadlineMs = 5_000): Promise<void> {
    this.#shutdown.abort(new Error("sidecar is shutting down"));
    await Promise.race([Promise.allSettled([...this.#pending]), delay(deadlineMs)]);
  }

  #launch<C>(plan: OperationPlan<C>): { record: OperationRecord; done: Promise<OperationRecord> } {
    if (plan.mutating && this.#current) {
      throw new ConflictError(
        `a ${this.#current.kind} operation is already running (${this.#current.id})`,
        this.#current.id,
      );
    }
    if (plan.mutating) this.assertWritable();
    const now = new Date().toISOString();
    const op: OperationRecord = {
      id: newOperationId(),
      kind: plan.kind,
      status: "running",
      mutating: plan.mutating,
      started_at: now,
      trigger: plan.trigger,
      params: plan.params,
      steps: [],
      ...(plan.reason ? { reason: plan.reason } : {}),
    };
    this.#journal({ t: "op-start", ts: now, op: withoutSteps(op) });
    this.#remember(op);
    if (plan.mutating) this.#current = op;
    this.bus.publish({ type: "operation.started", operation: structuredClone(op) });
    const done = this.#execute(plan, op);
    return { record: structuredClone(op), done };
  }

  async #execute<C>(plan: OperationPlan<C>, op: OperationRecord): Promise<OperationRecord> {
    let failure: { step: string; error: Error } | undefined;
    try {
      for (const step of plan.steps) {
        const error = await this.#runStep(plan, op, step, false);
        if (error) {
          failure ??= { step: step.name, error };
          if (!step.continueOnFailure) break;
        }
      }
      let status: OperationRecord["status"] = failure ? "failed" : "succeeded";
      if (failure && plan.rollback) {
        const undo = plan.rollback(failure, plan.ctx);
        let undone = undo.length > 0;
        for (const step of undo) {
          if (await this.#runStep(plan, op, step, true)) {
            undone = false;
            break;
          }
        }
        if (undone) status = "rolled_back";
      }
      this.#finish(plan, op, status, failure);
    } catch (error) {
      // A bug in the runner itself must still leave a finished record behind.
      try {
        this.#finish(plan, op, "failed", { step: "(runner)", error: error as Error });
      } catch (again) {
        this.options.logger?.error({ err: again }, "could not record the end of an operation");
      }
    } finally {
      if (this.#current === op) this.#current = undefined;
    }
    this.#maybeCompact();
    return structuredClone(op);
  }

  async #runStep<C>(plan: OperationPlan<C>, op: OperationRecord, step: Step<C>, rollback: boolean) {
    const started = Date.now();
    const record: StepRecord = {
      key: step.key,
      name: step.name,
      status: "running",
      started_at: new Date(started).toISOString(),
      ...(rollback ? { rollback: true } : {}),
    };
    op.steps.push(record);
    this.#journal({
      t: "step-start",
      ts: record.started_at,
      op_id: op.id,
      step: step.name,
      key: step.key,
      ...(rollback ? { rollback } : {}),
    });
    this.bus.publish({ type: "operation.step", operation_id: op.id, kind: op.kind, step: { ...record } });

    const controller = new AbortController();
    let interrupt!: (reason: Error) => void;
    // Rejects before aborting, so the step's own reaction to the abort cannot win the race.
    const interrupted = new Promise<never>((_, reject) => {
      interrupt = (reason) => {
        reject(reason);
        controller.abort(reason);
      };
    });
    const onShutdown = () => interrupt(this.#shutdown.signal.reason as Error);
    this.#shutdown.signal.addEventListener("abort", onShutdown, { once: true });
    let timer: NodeJS.Timeout | undefined;
    let error: Error | undefined;
    let running: Promise<unknown> | undefined;
    try {
      if (this.#shutdown.signal.aborted) throw this.#shutdown.signal.reason as Error;
      timer = setTimeout(() => interrupt(new StepTimeout(step.name, step.timeoutMs)), step.timeoutMs);
      const work = step.run({ ctx: plan.ctx, signal: controller.signal, op });
      running = work;
      const detail = await Promise.race([work, interrupted]);
      record.status = "succeeded";
      if (typeof detail === "string" && detail !== "") record.detail = detail;
    } catch (caught) {
      error = caught instanceof Error ? caught : new Error(String(caught));
      record.status = "failed";
      record.error = error.message;
      if (error instanceof StepFailure && error.output) record.detail = error.output;
    } finally {
      clearTimeout(timer);
      this.#shutdown.signal.removeEventListener("abort", onShutdown);
    }
    if (controller.signal.aborted && running) {
      // The abort reaches the step's remote command (TERM, then KILL): let it end before the next
      // step or a rollback touches the same dongle, but never wait for ever.
      await Promise.race([running.catch(() => undefined), delay(this.options.settleMs ?? 15_000)]);
    }
    const finished = Date.now();
    record.finished_at = new Date(finished).toISOString();
    record.duration_ms = finished - started;
    this.#journal({
      t: "step-end",
      ts: record.finished_at,
      op_id: op.id,
      step: step.name,
      key: step.key,
      status: record.status,
      duration_ms: record.duration_ms,
      ...(record.detail !== undefined ? { detail: record.detail } : {}),
      ...(record.error !== undefined ? { error: record.error } : {}),
      ...(rollback ? { rollback } : {}),
    });
    this.bus.publish({ type: "operation.step", operation_id: op.id, kind: op.kind, step: { ...record } });
    return error;
  }

  #finish<C>(
    plan: OperationPlan<C>,
    op: OperationRecord,
    status: Exclude<OperationRecord["status"], "running">,
    failure: { step: string; error: Error } | undefined,
  ): void {
    const now = new Date();
    op.status = status;
    op.finished_at = now.toISOString();
    op.duration_ms = now.getTime() - Date.parse(op.started_at);
    let result: Record<string, unknown> | undefined;
    try {
      result = plan.result?.(plan.ctx);
    } catch {
      result = undefined;
    }
    if (result) op.result = result;
    if (failure) {
      op.error = {
        step: failure.step,
        message: failure.error.message,
        ...(failure.error instanceof StepFailure && failure.error.output
          ? { output: failure.error.output }
          : {}),
      };
    }
    this.#journal({
      t: "op-end",
      ts: op.finished_at,
      op_id: op.id,
      status,
      ...(result ? { result } : {}),
      ...(op.error ? { error: op.error } : {}),
    });
    this.bus.publish({ type: "operation.finished", operation: structuredClone(op) });
  }

  #remember(op: OperationRecord): void {
    this.#history.push(op);
    if (this.#history.length > this.#historyLimit) this.#history.shift();
  }
}

function withoutSteps(op: OperationRecord): Omit<OperationRecord, "steps" | "status"> {
  const { steps: _steps, status: _status, ...rest } = op;
  return rest;
}

/** Sortable, readable ids: time first, then randomness. */
export function newOperationId(): string {
  const stamp = new Date()
    .toISOString()
    .replace(/[-:]/g, "")
    .replace(/\.\d+Z$/, "Z");
  return `op-${stamp}-${randomUUID().slice(0, 8)}`;
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

/**
 * Marks operations the journal shows unfinished (the sidecar died while they ran) as interrupted,
 * journals that verdict, and returns them so the caller can decide what recovery is safe.
 */
export function markInterrupted(journal: Journal, operations: OperationRecord[]): OperationRecord[] {
  const interrupted: OperationRecord[] = [];
  for (const op of operations) {
    if (op.status !== "running") continue;
    const now = new Date().toISOString();
    const lastDone = [...op.steps].reverse().find((s) => s.status === "succeeded");
    const running = op.steps.find((s) => s.status === "running");
    for (const step of op.steps) {
      if (step.status === "running") {
        step.status = "interrupted";
        step.error = "the sidecar stopped while this step ran";
      }
    }
    op.status = "interrupted";
    op.finished_at = now;
    if (lastDone) op.last_completed_step = lastDone.name;
    op.error = {
      ...(running ? { step: running.name } : {}),
      message: running
        ? `the sidecar stopped during step "${running.name}"`
        : "the sidecar stopped between steps",
    };
    journal.append({
      t: "op-end",
      ts: now,
      op_id: op.id,
      status: "interrupted",
      result: { ...(op.result ?? {}), last_completed_step: lastDone?.name ?? null },
      error: op.error,
    });
    interrupted.push(op);
  }
  return interrupted;
}
