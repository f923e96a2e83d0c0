import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import type { SnapshotInfo } from "../types.js";
import { writeFileAtomic, writeJsonAtomic } from "./atomic.js";
import { type StorageHealth, storageProblemOf } from "./storage.js";

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

type Kind = "data" | "nvram";

const SHA256 = /^[0-9a-f]{64}$/;
const ID = /^[a-z]+-[0-9TZ]+-[0-9a-f]{8}$/;

const relativePath = z
  .string()
  .min(1)
  .refine(
    (p) =>
      !p.startsWith("/") && !p.includes("\0") && p.split("/").every((part) => part !== "" && part !== ".."),
    "not a safe relative path",
  );

const dataSchema = z.object({
  id: z.string().regex(ID),
  kind: z.literal("data"),
  created_at: z.string().min(1),
  node: z.string().min(1),
  operation_id: z.string().optional(),
  content_digest: z.string().regex(SHA256),
  files: z.array(
    z.object({
      path: relativePath,
      size: z.number().int().min(0),
      mtime_ms: z.number(),
      mode: z.number().int().min(0),
      sha256: z.string().regex(SHA256),
    }),
  ),
  notes: z.array(z.string()).optional(),
});

const nvramSchema = z.object({
  id: z.string().regex(ID),
  kind: z.literal("nvram"),
  created_at: z.string().min(1),
  node: z.string().min(1),
  operation_id: z.string().optional(),
  network: z.record(z.string(), z.unknown()),
  dump: z.record(z.string(), z.record(z.string(), z.string())),
});

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

export interface SnapshotStoreOptions {
  /** A snapshot file that cannot be read was set aside in snapshots/corrupt/. */
  onCorrupt?: (id: string, file: string, reason: string) => void;
  /** Told when a write is refused (full disk), so that no new mutating operation starts. */
  storage?: StorageHealth;
}

export interface Retention {
  /** Newest snapshots of each kind kept (sync.keep). */
  keep: number;
  /** Total bytes the snapshots may take (storage.snapshots_max_bytes); the oldest go first. */
  maxBytes: number;
  pinned: Set<string>;
}

/**
 * The controller's copies of data dirs and coordinator NVRAM. File contents are stored once, by
 * sha256 (objects/), so keeping many snapshots of a data dir that barely changes costs little,
 * and an unchanged file is never fetched twice. Snapshot files are validated when read; one that
 * is not valid (a truncated write, a disk error) is moved to corrupt/ and reported once, and the
 * store goes on with the others: one bad file must not stop monitoring or the API.
 */
export class SnapshotStore {
  readonly root: string;
  readonly #ids: Record<Kind, string[]>;
  readonly #cache = new Map<string, DataSnapshot | NvramSnapshot>();

  constructor(
    stateDir: string,
    private readonly options: SnapshotStoreOptions = {},
  ) {
    this.root = join(stateDir, "snapshots");
    for (const dir of ["objects", "data", "nvram"])
      mkdirSync(join(this.root, dir), { recursive: true, mode: 0o700 });
    this.#ids = { data: this.#scan("data"), nvram: this.#scan("nvram") };
  }

  #scan(kind: Kind): string[] {
    return readdirSync(join(this.root, kind))
      .filter((f) => f.endsWith(".json") && !f.startsWith("."))
      .map((f) => f.slice(0, -5))
      .filter((id) => ID.test(id))
      .sort();
  }

  #objectPath(sha256: string): string {
    if (!SHA256.test(sha256)) throw new Error(`not a sha256: ${sha256}`);
    return join(this.root, "objects", sha256.slice(0, 2), sha256);
  }

  #write(what: string, write: () => void): void {
    try {
      write();
    } catch (error) {
      const code = storageProblemOf(error);
      if (code)
        this.options.storage?.failed(code, `${what} could not be written (${(error as Error).message})`);
      throw error;
    }
  }

  hasObject(sha256: string): boolean {
    return existsSync(this.#objectPath(sha256));
  }

  /** Stores content and returns its sha256; content already present is not written again. */
  putObject(data: Buffer): string {
    const sha256 = createHash("sha256").update(data).digest("hex");
    const path = this.#objectPath(sha256);
    if (!existsSync(path)) this.#write("a snapshot object", () => writeFileAtomic(path, data, 0o400));
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
    this.#save("data", full);
    return full;
  }

  saveNvram(snapshot: Omit<NvramSnapshot, "id" | "kind">): NvramSnapshot {
    const digest = createHash("sha256").update(JSON.stringify(snapshot.dump)).digest("hex");
    const full: NvramSnapshot = {
      id: `nvram-${stamp(new Date(snapshot.created_at))}-${digest.slice(0, 8)}`,
      kind: "nvram",
      ...snapshot,
    };
    this.#save("nvram", full);
    return full;
  }

  #save(kind: Kind, snapshot: DataSnapshot | NvramSnapshot): void {
    this.#write(`snapshot ${snapshot.id}`, () =>
      writeJsonAtomic(join(this.root, kind, `${snapshot.id}.json`), snapshot, 0o600),
    );
    this.#cache.set(snapshot.id, snapshot);
    const ids = this.#ids[kind];
    if (!ids.includes(snapshot.id)) {
      ids.push(snapshot.id);
      ids.sort();
    }
  }

  getData(id: string): DataSnapshot | undefined {
    return this.#read("data", id) as DataSnapshot | undefined;
  }

  getNvram(id: string): NvramSnapshot | undefined {
    return this.#read("nvram", id) as NvramSnapshot | undefined;
  }

  /** The newest readable data snapshot; answered from memory after the first read. */
  latestData(): DataSnapshot | undefined {
    return this.#latest("data") as DataSnapshot | undefined;
  }

  /** The newest readable data snapshot taken from `node`'s own data dir. */
  latestDataOf(node: string): DataSnapshot | undefined {
    for (const id of [...this.#ids.data].reverse()) {
      const snapshot = this.getData(id);
      if (snapshot?.node === node) return snapshot;
    }
    return undefined;
  }

  latestNvram(): NvramSnapshot | undefined {
    return this.#latest("nvram") as NvramSnapshot | undefined;
  }

  #latest(kind: Kind): DataSnapshot | NvramSnapshot | undefined {
    for (const id of [...this.#ids[kind]].reverse()) {
      const snapshot = this.#read(kind, id);
      if (snapshot) return snapshot;
    }
    return undefined;
  }

  #read(kind: Kind, id: string): DataSnapshot | NvramSnapshot | undefined {
    if (!ID.test(id) || !this.#ids[kind].includes(id)) return undefined;
    const cached = this.#cache.get(id);
    if (cached) return cached;
    const file = join(this.root, kind, `${id}.json`);
    let reason: string;
    try {
      const parsed = (kind === "data" ? dataSchema : nvramSchema).safeParse(
        JSON.parse(readFileSync(file, "utf8")),
      );
      if (parsed.success && parsed.data.id === id) {
        this.#cache.set(id, parsed.data);
        return parsed.data;
      }
      reason = parsed.success
        ? `names itself ${parsed.data.id}`
        : parsed.error.issues
            .slice(0, 3)
            .map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`)
            .join("; ");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") {
        this.#forget(kind, id);
        return undefined;
      }
      reason = (error as Error).message;
    }
    this.#quarantine(kind, id, file, reason);
    return undefined;
  }

  /** Moves an unreadable snapshot file out of the way (kept for a look), so it is reported once. */
  #quarantine(kind: Kind, id: string, file: string, reason: string): void {
    this.#forget(kind, id);
    const dir = join(this.root, "corrupt");
    let kept = file;
    try {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      kept = join(dir, `${id}.json`);
      renameSync(file, kept);
    } catch {
      // Even when it cannot be moved it is forgotten for this run: no probe reads it again.
    }
    this.options.onCorrupt?.(id, kept, reason);
  }

  #forget(kind: Kind, id: string): void {
    this.#ids[kind] = this.#ids[kind].filter((i) => i !== id);
    this.#cache.delete(id);
  }

  list(pinned: Set<string>): SnapshotInfo[] {
    const out: SnapshotInfo[] = [];
    for (const id of [...this.#ids.data]) {
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
    for (const id of [...this.#ids.nvram]) {
      const s = this.getNvram(id);
      if (!s) continue;
      out.push({
        id,
        kind: "nvram",
        created_at: s.created_at,
        node: s.node,
        ...(s.operation_id ? { operation_id: s.operation_id } : {}),
        bytes: this.#fileSize("nvram", id),
        pinned: pinned.has(id),
      });
    }
    return out.sort((a, b) => (a.created_at < b.created_at ? 1 : a.created_at > b.created_at ? -1 : 0));
  }

  #fileSize(kind: Kind, id: string): number {
    try {
      return statSync(join(this.root, kind, `${id}.json`)).size;
    } catch {
      return 0;
    }
  }

  /** Bytes the kept snapshots take: every object they refer to counted once, plus the NVRAM dumps. */
  totalBytes(): number {
    const objects = new Map<string, number>();
    for (const id of this.#ids.data)
      for (const f of this.getData(id)?.files ?? []) objects.set(f.sha256, f.size);
    let total = 0;
    for (const size of objects.values()) total += size;
    for (const id of this.#ids.nvram) total += this.#fileSize("nvram", id);
    return total;
  }

  /**
   * Applies the retention: the newest `keep` snapshots of each kind plus every pinned one, then,
   * oldest first, drops unpinned ones until the total fits `maxBytes`. The newest snapshot of each
   * kind is always kept (it is what a failover restores from). Deletes the objects no remaining
   * data snapshot refers to. Returns the ids removed.
   */
  prune(retention: Retention): string[] {
    const { keep, maxBytes, pinned } = retention;
    const removed: string[] = [];
    const remove = (kind: Kind, id: string) => {
      rmSync(join(this.root, kind, `${id}.json`), { force: true });
      this.#forget(kind, id);
      removed.push(id);
    };
    for (const kind of ["data", "nvram"] as const) {
      const ids = [...this.#ids[kind]];
      for (const id of ids.slice(0, Math.max(0, ids.length - keep))) if (!pinned.has(id)) remove(kind, id);
    }
    while (this.totalBytes() > maxBytes) {
      const candidates = (["data", "nvram"] as const)
        .flatMap((kind) => this.#ids[kind].slice(0, -1).map((id) => ({ kind, id })))
        .filter((c) => !pinned.has(c.id))
        .sort((a, b) => (a.id.slice(a.kind.length) < b.id.slice(b.kind.length) ? -1 : 1));
      const oldest = candidates[0];
      if (!oldest) break;
      remove(oldest.kind, oldest.id);
    }
    const referenced = new Set<string>();
    for (const id of this.#ids.data) for (const f of this.getData(id)?.files ?? []) referenced.add(f.sha256);
    const objects = join(this.root, "objects");
    for (const prefix of readdirSync(objects)) {
      for (const name of readdirSync(join(objects, prefix))) {
        if (SHA256.test(name) && !referenced.has(name)) rmSync(join(objects, prefix, name), { force: true });
      }
    }
    return removed;
  }
}
