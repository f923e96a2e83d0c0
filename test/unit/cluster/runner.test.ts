import { mkdtempSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ConflictError, StorageUnavailableError } from "../../../sidecar/cluster/errors.js";
import { markInterrupted, OperationRunner, type Step, StepFailure } from "../../../sidecar/cluster/runner.js";
import { EventBus, type Stamped } from "../../../sidecar/notify/bus.js";
import { Journal } from "../../../sidecar/store/journal.js";
import { StorageHealth } from "../../../sidecar/store/storage.js";

function world() {
  const path = join(mkdtempSync(join(tmpdir(), "z2mha-runner-")), "journal.jsonl");
  const journal = Journal.open(path);
  const bus = new EventBus();
  const events: Stamped[] = [];
  bus.subscribe((e) => events.push(e));
  return { path, journal, bus, events, runner: new OperationRunner(journal, bus) };
}

const ok = <C = unknown>(name: string, detail?: string): Step<C> => ({
  key: name,
  name,
  timeoutMs: 1000,
  run: async () => detail,
});

const fail = <C = unknown>(name: string, message = "boom", output?: string): Step<C> => ({
  key: name,
  name,
  timeoutMs: 1000,
  run: async () => {
    throw new StepFailure(message, output);
  },
});

describe("operation runner", () => {
  it("runs steps in order, journals each before and after, publishes progress", async () => {
    const { runner, journal, events } = world();
    const op = await runner.run({
      kind: "sync",
      mutating: true,
      trigger: "test",
      params: { a: 1 },
      ctx: {},
      steps: [ok("one", "did one"), ok("two")],
      result: () => ({ bytes: 42 }),
    });
    expect(op.status).toBe("succeeded");
    expect(op.result).toEqual({ bytes: 42 });
    expect(op.steps.map((s) => [s.name, s.status, s.detail])).toEqual([
      ["one", "succeeded", "did one"],
      ["two", "succeeded", undefined],
    ]);
    expect(events.map((e) => e.type)).toEqual([
      "operation.started",
      "operation.step",
      "operation.step",
      "operation.step",
      "operation.step",
      "operation.finished",
    ]);
    const replayed = journal.replay().operations[0];
    expect(replayed).toMatchObject({ id: op.id, status: "succeeded", result: { bytes: 42 } });
    expect(replayed?.steps.map((s) => s.status)).toEqual(["succeeded", "succeeded"]);
  });

  it("stops at the first failing step and records the step, its message and output", async () => {
    const { runner } = world();
    let ranThird = false;
    const op = await runner.run({
      kind: "switchover",
      mutating: true,
      trigger: "test",
      params: {},
      ctx: {},
      steps: [
        ok("one"),
        fail("two", "nvram_write exited 1", "Traceback: ..."),
        {
          key: "three",
          name: "three",
          timeoutMs: 1000,
          run: async () => {
            ranThird = true;
          },
        },
      ],
    });
    expect(ranThird).toBe(false);
    expect(op.status).toBe("failed");
    expect(op.error).toEqual({ step: "two", message: "nvram_write exited 1", output: "Traceback: ..." });
  });

  it("a step that exceeds its timeout fails and its signal is aborted", async () => {
    const { runner } = world();
    let aborted = false;
    const op = await runner.run({
      kind: "sync",
      mutating: true,
      trigger: "test",
      params: {},
      ctx: {},
      steps: [
        {
          key: "slow",
          name: "slow",
          timeoutMs: 50,
          run: ({ signal }) =>
            new Promise((resolve) => {
              signal.addEventListener("abort", () => {
                aborted = true;
                resolve(undefined);
              });
            }),
        },
      ],
    });
    expect(op.status).toBe("failed");
    expect(op.error?.message).toBe('step "slow" timed out after 50 ms');
    expect(aborted).toBe(true);
  });

  it("rolls back after a failure and ends rolled_back when the rollback succeeds", async () => {
    const { runner } = world();
    const seen: string[] = [];
    const op = await runner.run({
      kind: "switchover",
      mutating: true,
      trigger: "test",
      params: {},
      ctx: { startedB: true },
      steps: [ok<{ startedB: boolean }>("stop A"), fail<{ startedB: boolean }>("write B")],
      rollback: (failed, ctx) => {
        seen.push(failed.step);
        return ctx.startedB ? [ok("stop B"), ok("start A")] : [];
      },
    });
    expect(seen).toEqual(["write B"]);
    expect(op.status).toBe("rolled_back");
    expect(op.error?.step).toBe("write B");
    expect(op.steps.filter((s) => s.rollback).map((s) => s.name)).toEqual(["stop B", "start A"]);
  });

  it("a failing rollback leaves the operation failed", async () => {
    const { runner } = world();
    const op = await runner.run({
      kind: "switchover",
      mutating: true,
      trigger: "test",
      params: {},
      ctx: {},
      steps: [fail("write B")],
      rollback: () => [fail("start A", "A did not start")],
    });
    expect(op.status).toBe("failed");
  });

  it("only one mutating operation at a time: the second gets a conflict naming the first", async () => {
    const { runner } = world();
    let release!: () => void;
    const first = runner.start({
      kind: "sync",
      mutating: true,
      trigger: "test",
      params: {},
      ctx: {},
      steps: [
        { key: "wait", name: "wait", timeoutMs: 5000, run: () => new Promise<void>((r) => (release = r)) },
      ],
    });
    const second = () =>
      runner.start({ kind: "switchover", mutating: true, trigger: "test", params: {}, ctx: {}, steps: [] });
    expect(second).toThrow(ConflictError);
    try {
      second();
    } catch (error) {
      expect((error as ConflictError).operationId).toBe(first.id);
    }
    // Read-only operations may run alongside.
    expect(
      runner.start({ kind: "check", mutating: false, trigger: "t", params: {}, ctx: {}, steps: [] }).id,
    ).toBeTruthy();
    await new Promise((r) => setTimeout(r, 10));
    release();
    await new Promise((r) => setTimeout(r, 10));
    expect(runner.get(first.id)?.status).toBe("succeeded");
    expect(
      runner.start({ kind: "sync", mutating: true, trigger: "t", params: {}, ctx: {}, steps: [] }).id,
    ).toBeTruthy();
  });

  it("unfinished operations found in the journal are marked interrupted with the last completed step", () => {
    const { journal, path } = world();
    journal.append({
      t: "op-start",
      ts: "2026-01-01T00:00:00.000Z",
      op: {
        id: "op-x",
        kind: "switchover",
        mutating: true,
        started_at: "2026-01-01T00:00:00.000Z",
        trigger: "api",
        params: {},
      },
    });
    journal.append({
      t: "step-start",
      ts: "2026-01-01T00:00:01.000Z",
      op_id: "op-x",
      step: "stop A",
      key: "stop-a",
    });
    journal.append({
      t: "step-end",
      ts: "2026-01-01T00:00:02.000Z",
      op_id: "op-x",
      step: "stop A",
      key: "stop-a",
      status: "succeeded",
      duration_ms: 1000,
    });
    journal.append({
      t: "step-start",
      ts: "2026-01-01T00:00:02.000Z",
      op_id: "op-x",
      step: "read NVRAM",
      key: "read-nvram",
    });
    const interrupted = markInterrupted(journal, journal.replay().operations);
    expect(interrupted).toHaveLength(1);
    expect(interrupted[0]).toMatchObject({
      status: "interrupted",
      last_completed_step: "stop A",
      error: { step: "read NVRAM" },
    });
    journal.close();
    // The verdict is journaled: a second start-up does not report it again.
    const again = Journal.open(path);
    const ops = again.replay().operations;
    expect(ops[0]?.status).toBe("interrupted");
    expect(markInterrupted(again, ops)).toEqual([]);
  });
});

describe("operation runner on a disk that refuses writes", () => {
  function fullDisk() {
    const dir = mkdtempSync(join(tmpdir(), "z2mha-runner-"));
    const disk = { full: false };
    const storage = new StorageHealth(dir, { minFreeBytes: 0 });
    const journal = Journal.open(join(dir, "journal.jsonl"), {
      storage,
      write: (fd, data) => {
        if (disk.full) throw Object.assign(new Error("ENOSPC: no space left on device"), { code: "ENOSPC" });
        writeSync(fd, data);
      },
    });
    const bus = new EventBus();
    return { disk, storage, journal, runner: new OperationRunner(journal, bus, { storage }) };
  }

  const plan = (steps: Step<unknown>[], mutating = true) => ({
    kind: "sync" as const,
    mutating,
    trigger: "test",
    params: {},
    ctx: {},
    steps,
  });

  it("an operation whose journal writes fail still ends, and leaves no phantom running operation", async () => {
    const { disk, runner } = fullDisk();
    const op = await runner.run(
      plan([
        {
          key: "fill",
          name: "fill the disk",
          timeoutMs: 1000,
          run: async () => {
            disk.full = true;
          },
        },
        ok("after"),
      ]),
    );
    expect(op.status).toBe("succeeded");
    expect(runner.running).toBeUndefined();
  });

  it("refuses a new mutating operation with a storage error while the disk refuses, and takes one once it does not", async () => {
    const { disk, runner } = fullDisk();
    disk.full = true;
    runner.record("decision", "test", "succeeded", {});
    expect(() => runner.start(plan([ok("one")]))).toThrow(StorageUnavailableError);
    // Checks (not mutating) still run: they only read.
    expect((await runner.run(plan([ok("look")], false))).status).toBe("succeeded");
    disk.full = false;
    const op = await runner.run(plan([ok("one")]));
    expect(op.status).toBe("succeeded");
  });
});

describe("an interrupted step is given time to wind down", () => {
  it("after a timeout the runner waits for the step's own end (its remote command stopped) before the rollback", async () => {
    const { runner } = world();
    const order: string[] = [];
    const op = await runner.run({
      kind: "switchover",
      mutating: true,
      trigger: "test",
      params: {},
      ctx: {},
      steps: [
        {
          key: "slow",
          name: "slow",
          timeoutMs: 20,
          run: ({ signal }) =>
            new Promise<void>((_, reject) =>
              signal.addEventListener("abort", () =>
                setTimeout(() => {
                  order.push("remote command ended");
                  reject(signal.reason);
                }, 100),
              ),
            ),
        },
      ],
      rollback: () => [
        {
          key: "undo",
          name: "undo",
          timeoutMs: 1000,
          run: async () => {
            order.push("rollback");
          },
        },
      ],
    });
    expect(op.status).toBe("rolled_back");
    expect(order).toEqual(["remote command ended", "rollback"]);
  });
});
