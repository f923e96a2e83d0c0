import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import type { SnapshotInfo } from "../types.js";
import { writeFileAtomic, writeJsonAtomic } from "./atomic.js";

export interface SnapshotFile {
  path: string;
  size: number;
  mtime_ms: number;
  mode: number;
  sha256: string;
}

export interface DataSnapshot {
  id: string;
  kind: "data";
  created_at: string;
  node: string;
  operation_id?: string;
  /** sha256 over the sorted (path, sha256, mode) list: equal content gives an equal digest. */
  content_digest: string;
  files: SnapshotFile[];
  notes?: string[];
}

export interface NvramSnapshot {
  id: string;
  kind: "nvram";
  created_at: string;
  node: string;
  operation_id?: string;
  /** Network identity and frame counter read from the dump when it was taken. */
  network: Record<string, unknown>;
  dump: Record<string, Record<string, string>>;
}

const SHA256 = /^[0-9a-f]{64}$/;

export function contentDigest(files: Pick<SnapshotFile, "path" | "sha256" | "mode">[]): string {
  const hash = createHash("sha256");
  for (const f of [...files].sort((a, b) => (a.path < b.path ? -1 : 1))) {
    hash.update(`${f.path}\0${f.sha256}\0${f.mode.toString(8)}\n`);
  }
  return hash.digest("hex");
}

function stamp(date: Date): string {
  return date
    .toISOString()
    .replace(/[-:]/g, "")
    .replace(/\.(\d{3})Z$/, "$1Z");
}

/**
 * The controller's copies of data dirs and coordinator NVRAM. File contents are stored once, by
 * sha256 (objects/), so keeping many snapshots of a data dir that barely changes costs little,
 * and an unchanged file is never fetched twice.
 */
export class SnapshotStore {
  readonly root: string;

  constructor(stateDir: string) {
    this.root = join(stateDir, "snapshots");
    for (const dir of ["objects", "data", "nvram"])
      mkdirSync(join(this.root, dir), { recursive: true, mode: 0o700 });
  }

  #objectPath(sha256: string): string {
    if (!SHA256.test(sha256)) throw new Error(`not a sha256: ${sha256}`);
    return join(this.root, "objects", sha256.slice(0, 2), sha256);
  }

  hasObject(sha256: string): boolean {
    return existsSync(this.#objectPath(sha256));
  }

  /** Stores content and returns its sha256; content already present is not written again. */
  putObject(data: Buffer): string {
    const sha256 = createHash("sha256").update(data).digest("hex");
    const path = this.#objectPath(sha256);
    if (!existsSync(path)) writeFileAtomic(path, data, 0o400);
    return sha256;
  }

  readObject(sha256: string): Buffer {
    const data = readFileSync(this.#objectPath(sha256));
    const actual = createHash("sha256").update(data).digest("hex");
    if (actual !== sha256)
      throw new Error(`snapshot object ${sha256} is corrupt (content hashes to ${actual})`);
    return data;
  }

  saveData(snapshot: Omit<DataSnapshot, "id" | "kind" | "content_digest">): DataSnapshot {
    for (const f of snapshot.files) {
      if (!this.hasObject(f.sha256)) throw new Error(`object for ${f.path} (${f.sha256}) is missing`);
    }
    const digest = contentDigest(snapshot.files);
    const created = new Date(snapshot.created_at);
    const full: DataSnapshot = {
      id: `data-${stamp(created)}-${digest.slice(0, 8)}`,
      kind: "data",
      content_digest: digest,
      ...snapshot,
    };
    writeJsonAtomic(join(this.root, "data", `${full.id}.json`), full, 0o600);
    return full;
  }

  saveNvram(snapshot: Omit<NvramSnapshot, "id" | "kind">): NvramSnapshot {
    const digest = createHash("sha256").update(JSON.stringify(snapshot.dump)).digest("hex");
    const full: NvramSnapshot = {
      id: `nvram-${stamp(new Date(snapshot.created_at))}-${digest.slice(0, 8)}`,
      kind: "nvram",
      ...snapshot,
    };
    writeJsonAtomic(join(this.root, "nvram", `${full.id}.json`), full, 0o600);
    return full;
  }

  #ids(kind: "data" | "nvram"): string[] {
    return readdirSync(join(this.root, kind))
      .filter((f) => f.endsWith(".json") && !f.startsWith("."))
      .map((f) => f.slice(0, -5))
      .sort();
  }

  getData(id: string): DataSnapshot | undefined {
    return this.#read<DataSnapshot>("data", id);
  }

  getNvram(id: string): NvramSnapshot | undefined {
    return this.#read<NvramSnapshot>("nvram", id);
  }

  latestData(): DataSnapshot | undefined {
    const id = this.#ids("data").at(-1);
    return id ? this.getData(id) : undefined;
  }

  latestNvram(): NvramSnapshot | undefined {
    const id = this.#ids("nvram").at(-1);
    return id ? this.getNvram(id) : undefined;
  }

  #read<T>(kind: "data" | "nvram", id: string): T | undefined {
    if (!/^[a-z]+-[0-9TZ]+-[0-9a-f]{8}$/.test(id)) return undefined;
    const path = join(this.root, kind, `${id}.json`);
    return existsSync(path) ? (JSON.parse(readFileSync(path, "utf8")) as T) : undefined;
  }

  list(pinned: Set<string>): SnapshotInfo[] {
    const out: SnapshotInfo[] = [];
    for (const id of this.#ids("data")) {
      const s = this.getData(id);
      if (!s) continue;
      out.push({
        id,
        kind: "data",
        created_at: s.created_at,
        node: s.node,
        ...(s.operation_id ? { operation_id: s.operation_id } : {}),
        files: s.files.length,
        bytes: s.files.reduce((n, f) => n + f.size, 0),
        pinned: pinned.has(id),
      });
    }
    for (const id of this.#ids("nvram")) {
      const path = join(this.root, "nvram", `${id}.json`);
      const s = this.getNvram(id);
      if (!s) continue;
      out.push({
        id,
        kind: "nvram",
        created_at: s.created_at,
        node: s.node,
        ...(s.operation_id ? { operation_id: s.operation_id } : {}),
        bytes: statSync(path).size,
        pinned: pinned.has(id),
      });
    }
    return out.sort((a, b) => (a.created_at < b.created_at ? 1 : a.created_at > b.created_at ? -1 : 0));
  }

  /**
   * Keeps the newest `keep` snapshots of each kind plus every pinned one, and deletes objects no
   * remaining data snapshot refers to. Returns the ids removed.
   */
  prune(keep: number, pinned: Set<string>): string[] {
    const removed: string[] = [];
    for (const kind of ["data", "nvram"] as const) {
      const ids = this.#ids(kind);
      for (const id of ids.slice(0, Math.max(0, ids.length - keep))) {
        if (pinned.has(id)) continue;
        rmSync(join(this.root, kind, `${id}.json`));
        removed.push(id);
      }
    }
    const referenced = new Set<string>();
    for (const id of this.#ids("data"))
      for (const f of this.getData(id)?.files ?? []) referenced.add(f.sha256);
    const objects = join(this.root, "objects");
    for (const prefix of readdirSync(objects)) {
      for (const name of readdirSync(join(objects, prefix))) {
        if (SHA256.test(name) && !referenced.has(name)) rmSync(join(objects, prefix, name), { force: true });
      }
    }
    return removed;
  }
}
