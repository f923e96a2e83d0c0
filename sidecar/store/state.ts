import { randomBytes, randomUUID } from "node:crypto";
import { chmodSync, mkdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import type { ClusterState } from "../types.js";
import { readJsonIfExists, writeFileAtomic, writeJsonAtomic } from "./atomic.js";

export function initialState(): ClusterState {
  return {
    version: 1,
    active: null,
    automation: { automatic_failover: true, maintenance: false },
    fenced: {},
  };
}

/**
 * The cluster's durable state (which node is active, automation settings, fencing, last results),
 * kept in one JSON file replaced atomically on every change.
 */
export class StateStore {
  readonly path: string;
  #state: ClusterState;

  /** `initial` applies only when there is no state file yet (first start). */
  constructor(
    readonly dir: string,
    initial: Partial<ClusterState["automation"]> = {},
  ) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    this.path = join(dir, "state.json");
    const loaded = readJsonIfExists<ClusterState>(this.path);
    const fresh = initialState();
    fresh.automation = { ...fresh.automation, ...initial };
    this.#state = loaded ? { ...initialState(), ...loaded } : fresh;
  }

  get(): ClusterState {
    return structuredClone(this.#state);
  }

  /** Applies `change` to a copy, persists it, and only then makes it current. */
  update(change: (draft: ClusterState) => void): ClusterState {
    const draft = structuredClone(this.#state);
    change(draft);
    writeJsonAtomic(this.path, draft, 0o600);
    this.#state = draft;
    return structuredClone(draft);
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
    if (token.length < 16) throw new Error(`token in ${path} is shorter than 16 characters`);
    if ((statSync(path).mode & 0o077) !== 0) chmodSync(path, 0o600);
    return { token, created: false };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
  }
  const token = randomBytes(32).toString("base64url");
  writeFileAtomic(path, `${token}\n`, 0o600);
  return { token, created: true };
}
