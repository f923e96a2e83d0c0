/**
 * The state dir under a careless operator, a full disk and a second instance (issue 12): every
 * file the sidecar reads back is validated, and no write failure takes it down.
 */
import { spawn } from "node:child_process";
import {
  appendFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { Journal } from "../../../sidecar/store/journal.js";
import { legacyStepKey } from "../../../sidecar/store/journal-migrations.js";
import { LOCK_FILE, lockStateDir, StateDirLockedError } from "../../../sidecar/store/lock.js";
import { SnapshotStore } from "../../../sidecar/store/snapshots.js";
import { parseState, StateFileError, StateStore } from "../../../sidecar/store/state.js";
import { StorageHealth, type StorageProblem } from "../../../sidecar/store/storage.js";

const tempDir = (prefix: string) => mkdtempSync(join(tmpdir(), prefix));

function opStart(id: string, params: Record<string, unknown> = {}) {
  return {
    t: "op-start" as const,
    ts: "2026-01-01T00:00:00.000Z",
    op: {
      id,
      kind: "switchover" as const,
      mutating: true,
      started_at: "2026-01-01T00:00:00.000Z",
      trigger: "t",
      params,
    },
  };
}

describe("journal lines are validated, not trusted", () => {
  it("a line `null` or an op-start without its operation is skipped and reported, the rest replayed", () => {
    const path = join(tempDir("z2mha-j-"), "journal.jsonl");
    const journal = Journal.open(path);
    journal.append(opStart("op-1"));
    journal.close();
    appendFileSync(path, 'null\n{"t":"op-start"}\n{"t":"step-end","op_id":"op-1"}\n[]\n"text"\n');
    const again = Journal.open(path);
    again.append({ t: "op-end", ts: "2026-01-01T00:00:01.000Z", op_id: "op-1", status: "succeeded" });
    const { operations, problems } = again.replay();
    expect(operations.map((o) => [o.id, o.status])).toEqual([["op-1", "succeeded"]]);
    expect(problems.map((p) => [p.line, p.kind])).toEqual([
      [3, "corrupt-line"],
      [4, "corrupt-line"],
      [5, "corrupt-line"],
      [6, "corrupt-line"],
      [7, "corrupt-line"],
    ]);
    expect(problems[1]?.detail).toMatch(/not a journal entry/);
  });

  it("a version-1 journal (no header, steps without keys) gets its keys from the migration", () => {
    const path = join(tempDir("z2mha-j-"), "journal.jsonl");
    const lines = [
      opStart("op-1", { from: "node1", to: "node2" }),
      { t: "step-start", ts: "x", op_id: "op-1", step: "start node2" },
      { t: "step-end", ts: "x", op_id: "op-1", step: "start node2", status: "succeeded", duration_ms: 1 },
      { t: "step-start", ts: "x", op_id: "op-1", step: "retire the copy on node2", rollback: true },
      { t: "step-start", ts: "x", op_id: "op-1", step: "start node1 again", rollback: true },
    ];
    writeFileSync(path, `${lines.map((l) => JSON.stringify(l)).join("\n")}\n`);
    const journal = Journal.open(path);
    const op = journal.replay().operations[0];
    expect(op?.steps.map((s) => s.key)).toEqual(["start-target", "retire-target-copy", "restart-source"]);
    // Compaction writes the keys in and a version-2 header.
    journal.compact(10);
    const text = readFileSync(path, "utf8");
    expect(text.split("\n")[0]).toBe('{"t":"journal","version":2}');
    expect(text).toContain('"key":"start-target"');
  });

  it("legacy step names map to keys by the operation's own nodes, never by wording alone", () => {
    const op = { kind: "switchover" as const, params: { from: "node1", to: "node2" } };
    expect(legacyStepKey("start node2", op)).toBe("start-target");
    expect(legacyStepKey("start node1 again", op, true)).toBe("restart-source");
    expect(legacyStepKey("stop node2", op, true)).toBe("rollback-stop-target");
    expect(legacyStepKey("stop node1", op)).toBe("stop-source");
    expect(legacyStepKey("stage on node3", op)).toBe("stage:node3");
    expect(legacyStepKey("Something New!", op)).toBe("something-new");
  });

  it("a journal written by a newer sidecar is reported", () => {
    const path = join(tempDir("z2mha-j-"), "journal.jsonl");
    writeFileSync(path, '{"t":"journal","version":9}\n');
    expect(
      Journal.open(path)
        .replay()
        .problems.map((p) => p.kind),
    ).toEqual(["newer-version"]);
  });
});

/** A disk that refuses writes while `full` is set, as ENOSPC does. */
function refusingDisk() {
  const disk = { full: true };
  const write = (fd: number, data: Buffer) => {
    if (disk.full)
      throw Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC" });
    writeSync(fd, data);
  };
  return { disk, write };
}

describe("a full disk never throws out of the journal", () => {
  it("appends the disk refuses are held in memory, in order, reported, and written once it takes them", () => {
    const dir = tempDir("z2mha-j-");
    const path = join(dir, "journal.jsonl");
    const problems: (StorageProblem | undefined)[] = [];
    const storage = new StorageHealth(dir, { minFreeBytes: 0, onChange: (p) => problems.push(p) });
    const { disk, write } = refusingDisk();
    const journal = Journal.open(path, { storage, write });
    expect(journal.append(opStart("op-1"))).toBe(false);
    expect(journal.append({ t: "op-end", ts: "x", op_id: "op-1", status: "succeeded" })).toBe(false);
    // The header line was refused too.
    expect(journal.held.lines).toBe(3);
    expect(problems.at(-1)).toMatchObject({ code: "full", pending: ["operations journal"] });
    expect(storage.check()?.code).toBe("full");
    expect(journal.replay().operations.map((o) => [o.id, o.status])).toEqual([["op-1", "succeeded"]]);
    disk.full = false;
    expect(storage.check()).toBeUndefined();
    expect(problems.at(-1)).toBeUndefined();
    expect(journal.held.lines).toBe(0);
    const lines = readFileSync(path, "utf8").trim().split("\n");
    expect(lines.map((l) => JSON.parse(l).t)).toEqual(["journal", "op-start", "op-end"]);
  });
});

describe("state file", () => {
  it("a state file that is not JSON stops start-up with what is wrong and what to do", () => {
    const dir = tempDir("z2mha-s-");
    writeFileSync(join(dir, "state.json"), '{"active": "node1",');
    expect(() => new StateStore(dir)).toThrow(StateFileError);
    expect(() => new StateStore(dir)).toThrow(
      /is not valid JSON.*move it aside \(mv .*state\.json .*state\.json\.bad\)/s,
    );
  });

  it("a field of the wrong type is named", () => {
    expect(() =>
      parseState('{"version":1,"active":3,"automation":{"automatic_failover":"yes"}}', "/s/state.json"),
    ).toThrow(/active: .*automation\.automatic_failover/s);
  });

  it("a file without version is version 1; a newer one is refused", () => {
    expect(parseState('{"active":"node2"}', "/s").active).toBe("node2");
    expect(() => parseState('{"version":7}', "/s")).toThrow(/newer sidecar \(format 7/);
  });

  it("publishes every change itself, and nothing for an update that changes nothing", () => {
    const seen: (string | null)[] = [];
    const store = new StateStore(tempDir("z2mha-s-"), { onChange: (s) => seen.push(s.active) });
    store.update((s) => {
      s.active = "node1";
    });
    store.update((s) => {
      s.active = "node1";
    });
    store.update((s) => {
      s.active = "node2";
    });
    expect(seen).toEqual(["node1", "node2"]);
  });

  it("a change the disk refuses still becomes current, is published, and is written once it can be", () => {
    const dir = tempDir("z2mha-s-");
    const problems: (StorageProblem | undefined)[] = [];
    const storage = new StorageHealth(dir, { minFreeBytes: 0, onChange: (p) => problems.push(p) });
    const seen: (string | null)[] = [];
    const store = new StateStore(dir, { storage, onChange: (s) => seen.push(s.active) });
    // A non-empty directory where the file goes makes the atomic rename fail.
    mkdirSync(join(dir, "state.json", "x"), { recursive: true });
    store.update((s) => {
      s.active = "node2";
    });
    expect(store.get().active).toBe("node2");
    expect(seen).toEqual(["node2"]);
    expect(store.dirty).toBe(true);
    expect(problems.at(-1)).toMatchObject({ pending: ["state file"] });
    rmSync(join(dir, "state.json"), { recursive: true });
    expect(storage.check()).toBeUndefined();
    expect(problems.at(-1)).toBeUndefined();
    expect(store.dirty).toBe(false);
    expect(new StateStore(dir).get().active).toBe("node2");
  });
});

describe("snapshot store", () => {
  function snapshot(s: SnapshotStore, content: string, at: string) {
    const sha = s.putObject(Buffer.from(content));
    return s.saveData({
      created_at: at,
      node: "node1",
      files: [{ path: "database.db", size: content.length, mtime_ms: 0, mode: 0o644, sha256: sha }],
    });
  }

  it("a truncated newest snapshot is set aside once and the previous one is used", () => {
    const dir = tempDir("z2mha-snap-");
    const s = new SnapshotStore(dir);
    const older = snapshot(s, "a", "2026-01-01T00:00:00.000Z");
    const newer = snapshot(s, "b", "2026-01-01T00:01:00.000Z");
    const file = join(s.root, "data", `${newer.id}.json`);
    writeFileSync(file, readFileSync(file, "utf8").slice(0, 40));
    const corrupt: string[] = [];
    const reopened = new SnapshotStore(dir, { onCorrupt: (id) => corrupt.push(id) });
    expect(reopened.latestData()?.id).toBe(older.id);
    expect(reopened.latestData()?.id).toBe(older.id);
    expect(reopened.list(new Set()).map((x) => x.id)).toEqual([older.id]);
    expect(corrupt).toEqual([newer.id]);
    expect(existsSync(file)).toBe(false);
    expect(existsSync(join(s.root, "corrupt", `${newer.id}.json`))).toBe(true);
  });

  it("retention by total size drops the oldest unpinned snapshots but never the newest", () => {
    const s = new SnapshotStore(tempDir("z2mha-snap-"));
    const ids = [0, 1, 2, 3].map(
      (i) => snapshot(s, String(i).repeat(1000), `2026-01-01T00:0${i}:00.000Z`).id,
    );
    const removed = s.prune({ keep: 10, maxBytes: 2500, pinned: new Set([ids[0] as string]) });
    expect(removed).toEqual([ids[1], ids[2]]);
    expect(s.totalBytes()).toBe(2000);
    // Even a cap below one snapshot keeps the newest: it is what a failover restores from.
    s.prune({ keep: 10, maxBytes: 10, pinned: new Set() });
    expect(s.list(new Set()).map((x) => x.id)).toEqual([ids[3]]);
  });
});

describe("state dir lock", () => {
  it("a second holder is refused with the holder's pid; released, the dir can be taken again", () => {
    const dir = tempDir("z2mha-lock-");
    const child = spawn(process.execPath, ["-e", "setTimeout(() => {}, 60000)"]);
    try {
      symlinkSync(`${child.pid}::${hostname()}`, join(dir, LOCK_FILE));
      expect(() => lockStateDir(dir)).toThrow(StateDirLockedError);
      expect(() => lockStateDir(dir)).toThrow(new RegExp(`pid ${child.pid}`));
    } finally {
      child.kill("SIGKILL");
    }
  });

  it("a lock left by a process that is gone is taken over", async () => {
    const dir = tempDir("z2mha-lock-");
    const child = spawn(process.execPath, ["-e", ""]);
    await new Promise((r) => child.on("exit", r));
    symlinkSync(`${child.pid}::${hostname()}`, join(dir, LOCK_FILE));
    const lock = lockStateDir(dir);
    expect(readlinkSync(join(dir, LOCK_FILE))).toMatch(new RegExp(`^${process.pid}:`));
    lock.release();
    expect(existsSync(join(dir, LOCK_FILE))).toBe(false);
  });
});
