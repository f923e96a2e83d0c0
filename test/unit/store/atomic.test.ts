import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { removeOrphanTemps, writeFileAtomic } from "../../../sidecar/store/atomic.js";

/** A pid that certainly belonged to a process that has exited. */
function deadPid(): number {
  const child = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"]);
  return Number(child.stdout.toString());
}

describe("atomic writes", () => {
  it("replaces the file and leaves no temp file behind", () => {
    const dir = mkdtempSync(join(tmpdir(), "atomic-"));
    writeFileAtomic(join(dir, "state.json"), "one");
    writeFileAtomic(join(dir, "state.json"), "two");
    expect(readFileSync(join(dir, "state.json"), "utf8")).toBe("two");
    expect(readdirSync(dir)).toEqual(["state.json"]);
  });

  it("sweeps the temp files of writers that died, in subdirectories too, and keeps live writers' and foreign files", () => {
    const dir = mkdtempSync(join(tmpdir(), "atomic-"));
    mkdirSync(join(dir, "snapshots", "nvram"), { recursive: true });
    const dead = deadPid();
    const orphan = join(dir, `.state.json.${dead}.0badf00d.tmp`);
    const nested = join(dir, "snapshots", "nvram", `.x.json.${dead}.12345678.tmp`);
    const live = join(dir, `.state.json.${process.pid}.deadbeef.tmp`);
    const foreign = join(dir, "notes.tmp");
    for (const path of [orphan, nested, live, foreign]) writeFileSync(path, "partial");
    writeFileSync(join(dir, "state.json"), "{}");

    expect(removeOrphanTemps(dir).sort()).toEqual([orphan, nested].sort());
    expect(readdirSync(dir).sort()).toEqual(
      [`.state.json.${process.pid}.deadbeef.tmp`, "notes.tmp", "snapshots", "state.json"].sort(),
    );
    expect(readdirSync(join(dir, "snapshots", "nvram"))).toEqual([]);
  });

  it("treats a missing directory as nothing to sweep", () => {
    expect(removeOrphanTemps(join(tmpdir(), "atomic-does-not-exist-9f3c"))).toEqual([]);
  });
});
