/**
 * A small client of the sidecar's REST API and event stream for lab tests and the bench: plain
 * fetch, no test framework, so `npm run bench` can use it too.
 */
import type { ClusterStatus, OperationKind, OperationRecord, StepRecord } from "../../sidecar/types.js";

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A step as one line for a test's messages: "[rollback: ]name: status". */
export function stepLine(step: StepRecord): string {
  return `${step.rollback ? "rollback: " : ""}${step.name}: ${step.status}`;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export class SidecarApi {
  constructor(
    readonly url: string,
    readonly token: string,
  ) {}

  async request<T = unknown>(
    method: string,
    path: string,
    body?: unknown,
  ): Promise<{ status: number; body: T }> {
    const res = await fetch(`${this.url}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${this.token}`,
        ...(body !== undefined ? { "content-type": "application/json" } : {}),
      },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      signal: AbortSignal.timeout(30_000),
    });
    const text = await res.text();
    return { status: res.status, body: (text ? JSON.parse(text) : undefined) as T };
  }

  async call<T = unknown>(method: string, path: string, body?: unknown): Promise<T> {
    const { status, body: answer } = await this.request<T>(method, path, body);
    if (status >= 400) throw new ApiError(status, `${method} ${path}: ${status} ${JSON.stringify(answer)}`);
    return answer;
  }

  status(): Promise<ClusterStatus> {
    return this.call<ClusterStatus>("GET", "/api/v1/status");
  }

  operation(id: string): Promise<OperationRecord> {
    return this.call<OperationRecord>("GET", `/api/v1/operations/${id}`);
  }

  async operations(kind?: OperationKind): Promise<OperationRecord[]> {
    const { operations } = await this.call<{ operations: OperationRecord[] }>(
      "GET",
      `/api/v1/operations?limit=500${kind ? `&kind=${kind}` : ""}`,
    );
    return operations;
  }

  /** Waits for the operation to end and returns its final record. */
  async finish(
    op: OperationRecord | Promise<OperationRecord>,
    timeoutMs = 300_000,
  ): Promise<OperationRecord> {
    const started = await op;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const current = await this.operation(started.id);
      if (current.status !== "running") return current;
      if (Date.now() > deadline)
        throw new Error(`${started.kind} ${started.id} still running after ${timeoutMs} ms`);
      await sleep(250);
    }
  }

  start(
    kind: "switchover" | "failover" | "sync" | "check",
    body: Record<string, unknown> = {},
  ): Promise<OperationRecord> {
    return this.call<OperationRecord>("POST", `/api/v1/${kind}`, kind === "check" ? undefined : body);
  }

  /** Starts an operation and waits for its end. */
  run(
    kind: "switchover" | "failover" | "sync" | "check",
    body: Record<string, unknown> = {},
  ): Promise<OperationRecord> {
    return this.finish(this.start(kind, body));
  }

  async waitFor<T>(
    what: string,
    probe: () => Promise<T | undefined | false>,
    timeoutMs = 120_000,
  ): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    let last: unknown;
    for (;;) {
      try {
        const value = await probe();
        if (value !== undefined && value !== false) return value;
      } catch (error) {
        // A server error is a bug to report, not a state to wait out.
        if (error instanceof ApiError && error.status >= 500) throw error;
        last = error;
      }
      if (Date.now() > deadline)
        throw new Error(`timed out waiting for ${what}${last ? ` (last error: ${last})` : ""}`);
      await sleep(250);
    }
  }

  /** Waits until status satisfies `ok`; returns that status. */
  waitForStatus(
    what: string,
    ok: (s: ClusterStatus) => boolean,
    timeoutMs = 120_000,
  ): Promise<ClusterStatus> {
    return this.waitFor(
      what,
      async () => {
        const s = await this.status();
        return ok(s) ? s : undefined;
      },
      timeoutMs,
    );
  }

  /** Collects every event of the stream until `stop()`; `seen(type, accept)` waits for one. */
  events(): EventRecorder {
    return new EventRecorder(this.url, this.token);
  }
}

export interface RecordedEvent {
  type: string;
  at: number;
  data: Record<string, unknown>;
}

export class EventRecorder {
  readonly events: RecordedEvent[] = [];
  readonly #controller = new AbortController();
  readonly #waiters = new Set<() => void>();
  readonly ready: Promise<void>;
  /** Why the stream ended before `stop()`, if it did: a waiter then fails at once, saying so. */
  #closed: string | undefined;

  constructor(url: string, token: string) {
    this.ready = new Promise((resolve, reject) => {
      fetch(`${url}/api/v1/events`, {
        headers: { authorization: `Bearer ${token}` },
        signal: this.#controller.signal,
      })
        .then(async (res) => {
          if (!res.ok) throw new Error(`GET /api/v1/events: ${res.status} ${await res.text()}`);
          resolve();
          const decoder = new TextDecoder();
          let buffer = "";
          for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
            buffer += decoder.decode(chunk, { stream: true });
            for (let end = buffer.indexOf("\n\n"); end >= 0; end = buffer.indexOf("\n\n")) {
              const frame = buffer.slice(0, end);
              buffer = buffer.slice(end + 2);
              const type = /^event: (.*)$/m.exec(frame)?.[1];
              const data = /^data: (.*)$/m.exec(frame)?.[1];
              if (type && data) {
                this.events.push({ type, at: Date.now(), data: JSON.parse(data) });
                for (const wake of this.#waiters) wake();
              }
            }
          }
          this.#close("the sidecar ended the event stream");
        })
        .catch((error: Error) => {
          if (error.name === "AbortError") return;
          this.#close(`the event stream failed: ${error.message}`);
          reject(error);
        });
    });
  }

  #close(why: string): void {
    if (this.#controller.signal.aborted) return;
    this.#closed = why;
    for (const wake of this.#waiters) wake();
  }

  seen(
    type: string,
    accept: (data: Record<string, unknown>) => boolean = () => true,
    timeoutMs = 120_000,
  ): Promise<RecordedEvent> {
    return this.#first((e) => e.type === type && accept(e.data), `${type} event`, timeoutMs);
  }

  /**
   * The operation's step that `accept` picks, once published. Fails at once, listing the steps
   * the operation ran, when the operation ends without it: a wait for a step that never comes
   * then says why instead of running into its timeout.
   */
  async step(
    operationId: string,
    accept: (step: StepRecord) => boolean,
    timeoutMs = 120_000,
  ): Promise<StepRecord> {
    const event = await this.#first(
      (e) =>
        (e.type === "operation.step" &&
          e.data.operation_id === operationId &&
          accept(e.data.step as StepRecord)) ||
        (e.type === "operation.finished" && (e.data.operation as OperationRecord).id === operationId),
      `step of ${operationId}`,
      timeoutMs,
      () => {
        const ran = this.events
          .filter((e) => e.type === "operation.step" && e.data.operation_id === operationId)
          .map((e) => stepLine(e.data.step as StepRecord));
        return `; its steps so far: ${JSON.stringify(ran)}`;
      },
    );
    if (event.type === "operation.step") return event.data.step as StepRecord;
    const op = event.data.operation as OperationRecord;
    const ran = op.steps.map(stepLine);
    throw new Error(
      `${op.kind} ${op.id} ended ${op.status} without the step awaited; ${JSON.stringify({ error: op.error, steps: ran })}`,
    );
  }

  #first(
    accept: (event: RecordedEvent) => boolean,
    what: string,
    timeoutMs: number,
    context: () => string = () => "",
  ): Promise<RecordedEvent> {
    const found = this.events.find(accept);
    if (found) return Promise.resolve(found);
    if (this.#closed) return Promise.reject(new Error(`no ${what}: ${this.#closed}`));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters.delete(check);
        reject(new Error(`no ${what} within ${timeoutMs} ms${context()}`));
      }, timeoutMs);
      const check = () => {
        const event = this.events.find(accept);
        if (event || this.#closed) {
          clearTimeout(timer);
          this.#waiters.delete(check);
          if (event) resolve(event);
          else reject(new Error(`no ${what}: ${this.#closed}`));
        }
      };
      this.#waiters.add(check);
    });
  }

  stop(): void {
    this.#controller.abort();
  }
}
