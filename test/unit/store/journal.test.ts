import { appendFileSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { Journal } from "../../../sidecar/store/journal.js";
import { StateStore } from "../../../sidecar/store/state.js";

function tempJournal(): string {
  return join(mkdtempSync(join(tmpdir(), "z2mha-journal-")), "journal.jsonl");
}

function started(journal: Journal, id: string) {
  journal.append({
    t: "op-start",
    ts: "2026-01-01T00:00:00.000Z",
    op: {
      id,
      kind: "sync",
      mutating: true,
      started_at: "2026-01-01T00:00:00.000Z",
      trigger: "test",
      params: {},
    },
  });
}

describe("operations journal", () => {
  it("replays operations and their steps from the file", () => {
    const path = tempJournal();
    const journal = Journal.open(path);
    started(journal, "op-1");
    journal.append({
      t: "step-start",
      ts: "2026-01-01T00:00:01.000Z",
      op_id: "op-1",
      step: "read",
      key: "read",
    });
    journal.append({
      t: "step-end",
      ts: "2026-01-01T00:00:02.000Z",
      op_id: "op-1",
      step: "read",
      key: "read",
      status: "succeeded",
      duration_ms: 1000,
      detail: "3 files",
    });
    journal.append({ t: "op-end", ts: "2026-01-01T00:00:03.000Z", op_id: "op-1", status: "succeeded" });
    journal.close();
    const { operations, problems } = Journal.open(path).replay();
    expect(problems).toEqual([]);
    expect(operations).toHaveLength(1);
    expect(operations[0]).toMatchObject({ id: "op-1", status: "succeeded", duration_ms: 3000 });
    expect(operations[0]?.steps).toEqual([
      expect.objectContaining({ name: "read", status: "succeeded", duration_ms: 1000, detail: "3 files" }),
    ]);
  });

  it("a torn last line (power loss) is cut off, kept aside and reported; later appends are clean", () => {
    const path = tempJournal();
    const journal = Journal.open(path);
    started(journal, "op-1");
    journal.close();
    const torn = '{"t":"step-start","ts":"2026-01-01T00:00:01.000Z","op_id":"op-1","st';
    appendFileSync(path, torn);
    const reopened = Journal.open(path);
    // Line 1 is the format header, line 2 the operation's start.
    expect(reopened.problems).toEqual([
      { line: 3, kind: "truncated-tail", bytes: torn.length, detail: `kept in ${path}.torn` },
    ]);
    expect(readFileSync(`${path}.torn`, "utf8")).toContain('"op_id":"op-1","st');
    reopened.append({ t: "op-end", ts: "2026-01-01T00:00:05.000Z", op_id: "op-1", status: "failed" });
    const { operations, problems } = reopened.replay();
    expect(problems.map((p) => p.kind)).toEqual(["truncated-tail"]);
    expect(operations[0]?.status).toBe("failed");
    expect(
      readFileSync(path, "utf8")
        .split("\n")
        .filter(Boolean)
        .every((l) => JSON.parse(l)),
    ).toBe(true);
  });

  it("a corrupt line in the middle is skipped and reported, never fatal", () => {
    const path = tempJournal();
    const journal = Journal.open(path);
    started(journal, "op-1");
    journal.close();
    appendFileSync(path, "not json at all\n");
    const again = Journal.open(path);
    started(again, "op-2");
    const { operations, problems } = again.replay();
    expect(problems).toEqual([{ line: 3, kind: "corrupt-line", bytes: 15, detail: "not JSON" }]);
    expect(operations.map((o) => o.id)).toEqual(["op-1", "op-2"]);
  });

  it("compaction keeps the newest operations and any unfinished one", () => {
    const path = tempJournal();
    const journal = Journal.open(path);
    started(journal, "op-unfinished");
    for (let i = 0; i < 10; i++) {
      started(journal, `op-${i}`);
      journal.append({ t: "op-end", ts: "2026-01-01T00:00:03.000Z", op_id: `op-${i}`, status: "succeeded" });
    }
    journal.compact(3);
    started(journal, "op-after");
    expect(journal.replay().operations.map((o) => o.id)).toEqual([
      "op-unfinished",
      "op-7",
      "op-8",
      "op-9",
      "op-after",
    ]);
  });
});

describe("state file", () => {
  it("survives a reload and is replaced atomically (no temp files left)", () => {
    const dir = mkdtempSync(join(tmpdir(), "z2mha-state-"));
    const store = new StateStore(dir);
    expect(store.get().active).toBeNull();
    store.update((s) => {
      s.active = "node2";
      s.automation.maintenance = true;
    });
    const reloaded = new StateStore(dir);
    expect(reloaded.get()).toMatchObject({
      active: "node2",
      automation: { maintenance: true, automatic_failover: true },
    });
    expect(readFileSync(join(dir, "state.json"), "utf8")).toContain('"active": "node2"');
  });

  it("a failed write leaves the previous state in memory and on disk", () => {
    const dir = mkdtempSync(join(tmpdir(), "z2mha-state-"));
    const store = new StateStore(dir);
    store.update((s) => {
      s.active = "node1";
    });
    expect(() =>
      store.update(() => {
        throw new Error("change failed");
      }),
    ).toThrow("change failed");
    expect(store.get().active).toBe("node1");
    expect(new StateStore(dir).get().active).toBe("node1");
  });
});
