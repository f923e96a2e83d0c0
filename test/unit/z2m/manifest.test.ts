import { describe, expect, it } from "vitest";
import {
  assertSafeRelative,
  diffManifests,
  excludeMatcher,
  type ManifestEntry,
} from "../../../sidecar/z2m/manifest.js";

const f = (path: string, sha256: string): ManifestEntry => ({
  path,
  sha256,
  size: 1,
  mtime_ms: 0,
  mode: 0o644,
});

describe("data-dir exclude patterns", () => {
  const excluded = excludeMatcher(["log", "ota", "*.bak", "backups/old/**"]);
  it.each([
    ["log", true],
    ["log/2026-11-26.14-00-00/log.log", true],
    ["ota/firmware.ota", true],
    ["database.db", false],
    ["configuration.yaml", false],
    ["configuration.yaml.bak", true],
    ["database.db.tmp", true],
    [".z2mha-upload-1234", true],
    ["backups/old/x.json", true],
    ["backups/new/x.json", false],
    ["catalog/x", false],
  ])("%s excluded: %s", (path, expected) => expect(excluded(path)).toBe(expected));
});

describe("manifest diff", () => {
  it("compares by content, not by time", () => {
    const before = { files: [f("a", "1"), f("b", "2"), f("c", "3")] };
    const after = { files: [f("a", "1"), { ...f("b", "9"), mtime_ms: 5 }, f("d", "4")] };
    const diff = diffManifests(before, after);
    expect(diff.unchanged.map((x) => x.path)).toEqual(["a"]);
    expect(diff.changed.map((x) => x.path)).toEqual(["b"]);
    expect(diff.added.map((x) => x.path)).toEqual(["d"]);
    expect(diff.removed.map((x) => x.path)).toEqual(["c"]);
  });
});

describe("relative paths", () => {
  it.each(["", "/etc/passwd", "../x", "a/../../b", "a//b", "./a"])("%j is refused", (p) => {
    expect(() => assertSafeRelative(p)).toThrow();
  });
  it("normal paths pass", () => expect(() => assertSafeRelative("a/b/c.json")).not.toThrow());
});
