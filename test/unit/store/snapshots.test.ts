import { chmodSync, mkdtempSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { SnapshotStore } from "../../../sidecar/store/snapshots.js";

function store() {
  return new SnapshotStore(mkdtempSync(join(tmpdir(), "z2mha-snap-")));
}

function snapshotOf(s: SnapshotStore, contents: Record<string, string>, at: string) {
  const files = Object.entries(contents).map(([path, text]) => ({
    path,
    size: text.length,
    mtime_ms: 0,
    mode: 0o644,
    sha256: s.putObject(Buffer.from(text)),
  }));
  return s.saveData({ created_at: at, node: "node1", files });
}

describe("snapshot store", () => {
  it("stores each content once, addressed by sha256", () => {
    const s = store();
    const a = s.putObject(Buffer.from("same"));
    const b = s.putObject(Buffer.from("same"));
    expect(a).toBe(b);
    expect(s.readObject(a).toString()).toBe("same");
    const objects = readdirSync(join(s.root, "objects", a.slice(0, 2)));
    expect(objects).toEqual([a]);
  });

  it("detects a corrupted object instead of handing it out", () => {
    const s = store();
    const sha = s.putObject(Buffer.from("good"));
    const path = join(s.root, "objects", sha.slice(0, 2), sha);
    chmodSync(path, 0o600);
    writeFileSync(path, "evil");
    expect(() => s.readObject(sha)).toThrow(/corrupt/);
  });

  it("equal content gives equal digests; snapshots list newest first", () => {
    const s = store();
    const one = snapshotOf(s, { "configuration.yaml": "a", "database.db": "b" }, "2026-01-01T00:00:00.000Z");
    const two = snapshotOf(s, { "database.db": "b", "configuration.yaml": "a" }, "2026-01-01T00:01:00.000Z");
    expect(one.content_digest).toBe(two.content_digest);
    expect(one.id).not.toBe(two.id);
    expect(s.latestData()?.id).toBe(two.id);
    expect(s.list(new Set()).map((x) => x.id)).toEqual([two.id, one.id]);
  });

  it("pruning keeps the newest N and the pinned ones, and collects unreferenced objects", () => {
    const s = store();
    const ids = [0, 1, 2, 3, 4].map(
      (i) =>
        snapshotOf(s, { "database.db": `v${i}`, "configuration.yaml": "c" }, `2026-01-01T00:0${i}:00.000Z`)
          .id,
    );
    const pinned = new Set([ids[0] as string]);
    const removed = s.prune({ keep: 2, maxBytes: Number.MAX_SAFE_INTEGER, pinned });
    expect(removed.sort()).toEqual([ids[1], ids[2]].sort());
    expect(s.list(pinned).map((x) => [x.id, x.pinned])).toEqual([
      [ids[4], false],
      [ids[3], false],
      [ids[0], true],
    ]);
    expect(() => s.readObject(s.putObject(Buffer.from("v0")))).not.toThrow();
    const all = readdirSync(join(s.root, "objects")).flatMap((p) => readdirSync(join(s.root, "objects", p)));
    // v0, v3, v4 and the shared configuration: v1 and v2 are gone.
    expect(all).toHaveLength(4);
  });

  it("refuses a manifest whose objects are missing", () => {
    const s = store();
    expect(() =>
      s.saveData({
        created_at: "2026-01-01T00:00:00.000Z",
        node: "n",
        files: [{ path: "x", size: 1, mtime_ms: 0, mode: 0o644, sha256: "a".repeat(64) }],
      }),
    ).toThrow(/missing/);
  });
});
