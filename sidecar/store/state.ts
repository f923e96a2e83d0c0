import { randomBytes, randomUUID } from "node:crypto";
import { chmodSync, mkdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import { MIN_TOKEN_LENGTH } from "../config/schema.js";
import type { ClusterState } from "../types.js";
import { writeFileAtomic, writeJsonAtomic } from "./atomic.js";
import { type PendingWrites, type StorageHealth, storageProblemOf } from "./storage.js";

/** The state file's format; a file without `version` is version 1. */
export const STATE_VERSION = 1;

export function initialState(): ClusterState {
  return {
    version: 1,
    active: null,
    automation: { automatic_failover: true, maintenance: false },
    fenced: {},
  };
}

const nodeId = z.string().min(1);
const timestamp = z.string().min(1);

/** state.json as this version writes it; read back through this, never with a cast. */
const stateSchema = z.object({
  version: z.literal(1),
  active: nodeId.nullable(),
  automation: z.object({ automatic_failover: z.boolean(), maintenance: z.boolean() }),
  fenced: z.record(nodeId, z.object({ at: timestamp, reason: z.string() })),
  last_sync: z
    .object({
      at: timestamp,
      operation_id: z.string(),
      snapshot_id: z.string().optional(),
      bytes_moved: z.number().optional(),
    })
    .optional(),
  last_switchover: z
    .object({
      at: timestamp,
      operation_id: z.string(),
      from: nodeId.nullable(),
      to: nodeId,
      kind: z.enum(["switchover", "failover"]),
      snapshots: z.array(z.string()).optional(),
    })
    .optional(),
  last_nvram_snapshot: z
    .object({ at: timestamp, id: z.string(), node: nodeId, backup_key: z.string().optional() })
    .optional(),
  staging: z
    .record(nodeId, z.object({ snapshot_id: z.string(), at: timestamp, operation_id: z.string() }))
    .optional(),
  last_backup_refresh: z.object({ at: timestamp, node: nodeId }).optional(),
  frame_counter_issued: z
    .object({
      at: timestamp,
      node: nodeId,
      counter: z.number().int().nonnegative(),
      extended_pan_id: z.string(),
    })
    .optional(),
  armed: z
    .record(
      nodeId,
      z.object({
        at: timestamp,
        source: z.string().min(1),
        extended_pan_id: z.string(),
        counter: z.number().int().nonnegative(),
        port: z.string(),
        operation_id: z.string(),
      }),
    )
    .optional(),
});

/**
 * One function per format version, turning that version's file into the next one's. Empty while
 * there is only version 1; a later format adds `1: (old) => ({ ...old, version: 2, … })`.
 */
const MIGRATIONS: Record<number, (old: Record<string, unknown>) => Record<string, unknown>> = {};

/** state.json cannot be used: start-up stops with this message (what is wrong, and what to do). */
export class StateFileError extends Error {
  constructor(
    readonly path: string,
    problem: string,
  ) {
    super(
      `${path} ${problem}. It records which node is active, fencing and the automation settings, so the sidecar does not guess. ` +
        `Fix it, or move it aside (mv ${path} ${path}.bad) to start afresh: the sidecar then adopts the one node that runs zigbee2mqtt as active, with automation as configured.`,
    );
    this.name = "StateFileError";
  }
}

/** Parses and migrates the text of a state file; throws StateFileError naming what is wrong. */
export function parseState(text: string, path: string): ClusterState {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new StateFileError(path, `is not valid JSON (${(error as Error).message})`);
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw))
    throw new StateFileError(path, "does not hold a JSON object");
  let doc = raw as Record<string, unknown>;
  let version = doc.version === undefined ? 1 : doc.version;
  if (typeof version !== "number" || !Number.isInteger(version) || version < 1)
    throw new StateFileError(path, `has an invalid version ${JSON.stringify(doc.version)}`);
  if (version > STATE_VERSION)
    throw new StateFileError(
      path,
      `was written by a newer sidecar (format ${version}; this one reads up to ${STATE_VERSION})`,
    );
  while (version < STATE_VERSION) {
    const migrate = MIGRATIONS[version];
    if (!migrate) throw new StateFileError(path, `has format ${version}, which nothing migrates`);
    doc = migrate(doc);
    version++;
  }
  const result = stateSchema.safeParse({ ...initialState(), ...doc, version: STATE_VERSION });
  if (!result.success) {
    const problems = result.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`);
    throw new StateFileError(path, `is not a valid state file (${problems.slice(0, 5).join("; ")})`);
  }
  return result.data as ClusterState;
}

export interface StateStoreOptions {
  /** Applies only when there is no state file yet (first start). */
  initial?: Partial<ClusterState["automation"]>;
  /** Called with the new state after every change: the store publishes its own changes. */
  onChange?: (state: ClusterState) => void;
  /** Told when a write is refused; the change is kept in memory and written once the disk takes it. */
  storage?: StorageHealth;
}

/**
 * The cluster's durable state (which node is active, automation settings, fencing, last results),
 * kept in one JSON file replaced atomically on every change. A change the disk refuses still
 * becomes current: forgetting that node2 is now the active one would make the split-brain guard
 * stop the very node that runs the network. It is written as soon as the disk takes it again.
 */
export class StateStore implements PendingWrites {
  readonly name = "state file";
  readonly path: string;
  #state: ClusterState;
  #dirty = false;

  constructor(
    readonly dir: string,
    private readonly options: StateStoreOptions = {},
  ) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    this.path = join(dir, "state.json");
    let text: string | undefined;
    try {
      text = readFileSync(this.path, "utf8");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT")
        throw new StateFileError(this.path, `cannot be read (${(error as Error).message})`);
    }
    if (text !== undefined) {
      this.#state = parseState(text, this.path);
    } else {
      this.#state = initialState();
      this.#state.automation = { ...this.#state.automation, ...options.initial };
    }
  }

  get(): ClusterState {
    return structuredClone(this.#state);
  }

  /** Whether the current state is not on disk yet (the disk refused it). */
  get dirty(): boolean {
    return this.#dirty;
  }

  /**
   * Applies `change` to a copy, persists it, makes it current and tells the listener. A change
   * that leaves the state as it was writes and publishes nothing.
   */
  update(change: (draft: ClusterState) => void): ClusterState {
    const draft = structuredClone(this.#state);
    change(draft);
    if (JSON.stringify(draft) === JSON.stringify(this.#state)) return structuredClone(draft);
    this.#state = draft;
    this.#dirty = true;
    this.flush();
    this.options.onChange?.(structuredClone(draft));
    return structuredClone(draft);
  }

  /** Writes the current state if it is not on disk; true when it is. */
  flush(): boolean {
    if (!this.#dirty) return true;
    try {
      writeJsonAtomic(this.path, this.#state, 0o600);
      this.#dirty = false;
      return true;
    } catch (error) {
      this.options.storage?.failed(
        storageProblemOf(error) ?? "io_error",
        `the cluster state is held in memory (${(error as Error).message})`,
        this,
      );
      if (!this.options.storage) throw error;
      return false;
    }
  }
}

/** A stable id for this sidecar installation (Home Assistant's unique_id). */
export function loadOrCreateInstanceId(dir: string): string {
  const path = join(dir, "instance_id");
  try {
    const id = readFileSync(path, "utf8").trim();
    if (id) return id;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
  }
  const id = randomUUID();
  writeFileAtomic(path, `${id}\n`, 0o644);
  return id;
}

/**
 * The API token: read from `path`, or generated there (mode 0600) on first start. A token file
 * readable by others is tightened rather than trusted silently.
 */
export function loadOrCreateToken(path: string): { token: string; created: boolean } {
  try {
    const token = readFileSync(path, "utf8").trim();
    if (token.length < MIN_TOKEN_LENGTH)
      throw new Error(`token in ${path} is shorter than ${MIN_TOKEN_LENGTH} characters`);
    if ((statSync(path).mode & 0o077) !== 0) chmodSync(path, 0o600);
    return { token, created: false };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
  }
  const token = randomBytes(32).toString("base64url");
  writeFileAtomic(path, `${token}\n`, 0o600);
  return { token, created: true };
}
