import { createHash } from "node:crypto";
import { posix } from "node:path";
import { formatSize } from "../../config/size.js";
import { hashRemote, listTree, readStable } from "../../node/data-files.js";
import type { StagedManifest, StageResult } from "../../node/staging.js";
import {
  contentDigest,
  type DataSnapshot,
  type Retention,
  type SnapshotFile,
} from "../../store/snapshots.js";
import { applyOverrides } from "../../z2m/config-yaml.js";
import { type ClusterContext, nodeOf, stagingOf } from "../context.js";
import { PreconditionError } from "../errors.js";
import { type OperationPlan, type Step, StepFailure } from "../runner.js";
import { recordStaged } from "./common.js";
import { armStep } from "./standby.js";

export interface SyncContext {
  source: string;
  targets: string[];
  snapshot?: DataSnapshot;
  /** True when the captured content equals the previous snapshot's. */
  unchanged: boolean;
  bytesRead: number;
  bytesWritten: number;
  filesRead: number;
  staged: string[];
  failed: Record<string, string>;
  backup: string;
  notes: string[];
}

export interface SyncOptions {
  trigger: string;
  reason?: string;
  /** Node whose data dir is read; default: the active node. */
  source?: string;
  /** Standbys to stage; default: every node but the source. */
  targets?: string[];
  /** Ask zigbee2mqtt for a fresh coordinator backup first: "auto" obeys sync.backup_refresh. */
  refreshBackup?: boolean | "auto";
}

const CAPTURE_ATTEMPTS = 8;

function sha256(data: Buffer): string {
  return createHash("sha256").update(data).digest("hex");
}

/**
 * Reads the source's data dir into the controller's snapshot store. Only files whose content the
 * store does not have yet are transferred; each is read whole, checked stable, and checked against
 * the hash the node computed, so a file being rewritten is read again rather than captured torn.
 */
export async function captureDataDir(
  cx: ClusterContext,
  nodeId: string,
  signal: AbortSignal,
): Promise<{ files: SnapshotFile[]; bytesRead: number; filesRead: number; notes: string[] }> {
  const node = nodeOf(cx, nodeId);
  const root = node.config.data_dir;
  const notes: string[] = [];
  const listing = await listTree(node.ssh, root, cx.exclude, (path, why) =>
    notes.push(`skipped ${path}: ${why}`),
  );
  // Refused before a byte is read: a data dir that grew (a stray backup, a database gone wild)
  // must not fill the controller's disk, where a full state dir stops every failover.
  const total = listing.reduce((n, f) => n + f.size, 0);
  const cap = cx.config.storage.snapshots_max_bytes;
  if (total > cap) {
    const biggest = [...listing].sort((x, y) => y.size - x.size).slice(0, 3);
    throw new StepFailure(
      `the data dir of ${nodeId} holds ${formatSize(total)}, more than storage.snapshots_max_bytes (${formatSize(cap)}): not copied. Largest: ${biggest.map((f) => `${f.path} (${formatSize(f.size)})`).join(", ")}; exclude what need not be copied (sync.exclude) or raise the limit`,
    );
  }
  const remote = await hashRemote(
    node.ssh,
    root,
    listing.map((f) => f.path),
  );
  const files: SnapshotFile[] = [];
  let bytesRead = 0;
  let filesRead = 0;
  for (const entry of listing) {
    signal.throwIfAborted();
    let expected = remote.get(entry.path);
    let size = entry.size;
    let mtime = entry.mtime_ms;
    let mode = entry.mode;
    for (let attempt = 1; expected && !cx.snapshots.hasObject(expected); attempt++) {
      if (attempt > CAPTURE_ATTEMPTS) {
        throw new StepFailure(
          `${entry.path} on ${nodeId} kept changing while it was read (${CAPTURE_ATTEMPTS} attempts)`,
        );
      }
      const read = await readStable(node.ssh, posix.join(root, entry.path));
      bytesRead += read.data.length;
      if (sha256(read.data) === expected) {
        cx.snapshots.putObject(read.data);
        filesRead++;
        ({ size, mtime_ms: mtime, mode } = read);
        break;
      }
      // Rewritten between hashing and reading: ask the node again.
      expected = (await hashRemote(node.ssh, root, [entry.path])).get(entry.path);
    }
    if (!expected) {
      notes.push(`${entry.path} disappeared during the sync`);
      continue;
    }
    files.push({ path: entry.path, size, mtime_ms: mtime, mode, sha256: expected });
  }
  if (!files.some((f) => f.path === "configuration.yaml")) {
    throw new StepFailure(
      `${root} on ${nodeId} has no configuration.yaml: refusing to take it as the cluster's data (is it mounted?)`,
    );
  }
  return { files, bytesRead, filesRead, notes };
}

/** The copy a standby should hold: the snapshot, with configuration.yaml given the standby's overrides. */
/**
 * Stages `snapshot` on `node` with the node's own overrides, uploading only what changed, and
 * records what the node's staging dir now holds (`operationId`: the operation that staged it).
 */
export async function stageSnapshot(
  cx: ClusterContext,
  node: string,
  snapshot: DataSnapshot,
  operationId: string,
): Promise<StageResult> {
  const result = await stagingOf(cx, node).stage(targetManifest(cx, snapshot, node), (sha) =>
    cx.snapshots.readObject(sha),
  );
  recordStaged(cx, node, snapshot.id, operationId);
  return result;
}

export function targetManifest(cx: ClusterContext, snapshot: DataSnapshot, target: string): StagedManifest {
  const overrides = nodeOf(cx, target).config.overrides;
  const files = snapshot.files.map((f) => {
    if (f.path !== "configuration.yaml" || Object.keys(overrides).length === 0) {
      return { path: f.path, sha256: f.sha256, size: f.size, mode: f.mode };
    }
    const text = applyOverrides(cx.snapshots.readObject(f.sha256).toString("utf8"), overrides);
    const data = Buffer.from(text, "utf8");
    return { path: f.path, sha256: cx.snapshots.putObject(data), size: data.length, mode: f.mode };
  });
  return {
    snapshot_id: snapshot.id,
    source_node: snapshot.node,
    target_node: target,
    staged_at: new Date().toISOString(),
    files,
  };
}

/** The snapshot retention the config asks for, with what the cluster state pins. */
export function retention(cx: ClusterContext): Retention {
  return {
    keep: cx.config.sync.keep,
    maxBytes: cx.config.storage.snapshots_max_bytes,
    pinned: pinnedSnapshots(cx),
  };
}

export function pinnedSnapshots(cx: ClusterContext): Set<string> {
  const state = cx.state.get();
  const pinned = new Set(state.last_switchover?.snapshots ?? []);
  for (const staged of Object.values(state.staging ?? {})) pinned.add(staged.snapshot_id);
  return pinned;
}

export function refreshBackupStep(
  cx: ClusterContext,
  ctx: { backup: string },
  force: boolean,
): Step<unknown> {
  return {
    key: "refresh-backup",
    name: "refresh coordinator backup",
    timeoutMs: cx.config.sync.backup_timeout + 5_000,
    run: async () => {
      const last = cx.state.get().last_backup_refresh;
      if (!force && last && Date.now() - Date.parse(last.at) < cx.config.sync.backup_refresh) {
        ctx.backup = `fresh enough (zigbee2mqtt wrote it ${Math.round((Date.now() - Date.parse(last.at)) / 1000)}s ago)`;
        return ctx.backup;
      }
      const bridge = cx.watcher.status();
      if (!bridge.broker_connected || bridge.state === "offline") {
        ctx.backup = `zigbee2mqtt is not online (${bridge.broker_connected ? "bridge/state offline" : "broker unreachable"}); using the backup on disk`;
        return ctx.backup;
      }
      const response = await cx.watcher.request("backup", {}, cx.config.sync.backup_timeout);
      if (response.status === "ok") {
        const node = cx.state.get().active ?? "?";
        cx.state.update((s) => {
          s.last_backup_refresh = { at: new Date().toISOString(), node };
        });
        ctx.backup = "zigbee2mqtt refreshed coordinator_backup.json";
      } else {
        ctx.backup = `zigbee2mqtt did not refresh the backup (${response.error ?? "error"}); using the one on disk`;
      }
      return ctx.backup;
    },
  };
}

export function readStep(cx: ClusterContext, ctx: SyncContext, name?: string): Step<SyncContext> {
  return {
    key: "read-source",
    name: name ?? `read data dir of ${ctx.source}`,
    timeoutMs: 300_000,
    run: async ({ signal, op }) => {
      const captured = await captureDataDir(cx, ctx.source, signal);
      ctx.bytesRead += captured.bytesRead;
      ctx.filesRead += captured.filesRead;
      ctx.notes.push(...captured.notes);
      const previous = cx.snapshots.latestData();
      if (
        previous &&
        previous.node === ctx.source &&
        previous.content_digest === contentDigest(captured.files)
      ) {
        ctx.snapshot = previous;
        ctx.unchanged = true;
        return `unchanged since ${previous.id}; ${captured.files.length} files, 0 bytes read`;
      }
      ctx.snapshot = cx.snapshots.saveData({
        created_at: new Date().toISOString(),
        node: ctx.source,
        operation_id: op.id,
        files: captured.files,
        ...(captured.notes.length ? { notes: captured.notes } : {}),
      });
      return `${ctx.snapshot.id}: ${captured.files.length} files, ${captured.filesRead} read (${captured.bytesRead} bytes)`;
    },
  };
}

export function stageStep(cx: ClusterContext, ctx: SyncContext, target: string): Step<SyncContext> {
  return {
    key: `stage:${target}`,
    name: `stage on ${target}`,
    timeoutMs: 300_000,
    continueOnFailure: true,
    run: async ({ op }) => {
      const snapshot = ctx.snapshot;
      if (!snapshot) throw new StepFailure("no snapshot to stage");
      try {
        if (cx.unreachable(target)) {
          throw new StepFailure(
            `${target} is unreachable (monitoring has had no answer from it): not staged`,
          );
        }
        const result = await stageSnapshot(cx, target, snapshot, op.id);
        ctx.bytesWritten += result.bytes_moved;
        ctx.staged.push(target);
        return result.unchanged
          ? "already up to date"
          : `${result.files_uploaded} files uploaded (${result.bytes_moved} bytes), ${result.files_linked} unchanged`;
      } catch (error) {
        ctx.failed[target] = (error as Error).message;
        throw error;
      }
    },
  };
}

export function pruneStep(cx: ClusterContext): Step<unknown> {
  return {
    key: "prune",
    name: "prune snapshots",
    timeoutMs: 60_000,
    run: async () => {
      const removed = cx.snapshots.prune(retention(cx));
      return removed.length ? `removed ${removed.length} old snapshots` : "nothing to remove";
    },
  };
}

/** A sync: fresh backup, read the active's data dir, stage it on every standby. */
export function syncPlan(cx: ClusterContext, options: SyncOptions): OperationPlan<SyncContext> {
  const source = options.source ?? cx.state.get().active;
  if (!source) {
    throw new PreconditionError("no active node is known yet: nothing to sync from");
  }
  nodeOf(cx, source);
  cx.arming.reset();
  const targets = options.targets ?? [...cx.nodes.keys()].filter((id) => id !== source);
  const ctx: SyncContext = {
    source,
    targets,
    unchanged: false,
    bytesRead: 0,
    bytesWritten: 0,
    filesRead: 0,
    staged: [],
    failed: {},
    backup: "not requested",
    notes: [],
  };
  const steps: Step<SyncContext>[] = [];
  if (options.refreshBackup !== false) {
    steps.push(refreshBackupStep(cx, ctx, options.refreshBackup === true) as Step<SyncContext>);
  }
  steps.push(readStep(cx, ctx));
  for (const target of targets) steps.push(stageStep(cx, ctx, target));
  steps.push({
    key: "record",
    name: "record",
    timeoutMs: 10_000,
    run: async ({ op }) => {
      if (Object.keys(ctx.failed).length > 0)
        return `not recorded as a full sync: ${Object.keys(ctx.failed).join(", ")} failed`;
      cx.state.update((s) => {
        s.last_sync = {
          at: new Date().toISOString(),
          operation_id: op.id,
          ...(ctx.snapshot ? { snapshot_id: ctx.snapshot.id } : {}),
          bytes_moved: ctx.bytesRead + ctx.bytesWritten,
        };
      });
      return undefined;
    },
  });
  // After the record: a standby's data is protected once staged; arming its dongle (a reset, a
  // write and a read, up to a minute on a real link) makes a failover onto it faster.
  for (const target of targets) steps.push(armStep(cx, target, ctx.notes) as Step<SyncContext>);
  steps.push(pruneStep(cx) as Step<SyncContext>);
  return {
    kind: "sync",
    mutating: true,
    trigger: options.trigger,
    ...(options.reason ? { reason: options.reason } : {}),
    params: { source, targets },
    ctx,
    steps,
    result: (c) => ({
      source: c.source,
      snapshot_id: c.snapshot?.id ?? null,
      unchanged: c.unchanged,
      bytes_moved: c.bytesRead + c.bytesWritten,
      bytes_read: c.bytesRead,
      bytes_written: c.bytesWritten,
      files_read: c.filesRead,
      staged: c.staged,
      failed: c.failed,
      backup: c.backup,
      ...(c.notes.length ? { notes: c.notes } : {}),
    }),
  };
}
