/**
 * The data dir as a takeover and a sync move it: captured from a node into the controller's
 * snapshot store, staged on another node with that node's overrides, and the retention that keeps
 * what the cluster's state still needs.
 */
import { createHash } from "node:crypto";
import { posix } from "node:path";
import { formatSize } from "../../config/size.js";
import { hashRemote, listTree, readStable } from "../../node/data-files.js";
import type { StagedManifest, StageResult } from "../../node/staging.js";
import type { DataSnapshot, Retention, SnapshotFile } from "../../store/snapshots.js";
import { applyOverrides } from "../../z2m/config-yaml.js";
import { type ClusterContext, nodeOf, stagingOf } from "../context.js";
import { type OperationPlan, type Step, StepFailure } from "../runner.js";
import { recordStaged } from "./common.js";

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
  replace?: ReadonlyMap<string, Buffer>,
): Promise<StageResult> {
  const result = await stagingOf(cx, node).stage(targetManifest(cx, snapshot, node, replace), (sha) =>
    cx.snapshots.readObject(sha),
  );
  recordStaged(cx, node, snapshot.id, operationId);
  return result;
}

/**
 * What `target` gets of `snapshot`: its configuration.yaml with the target's overrides, and the
 * files in `replace` (a path's new content, e.g. a coordinator backup with raised counters) instead
 * of the snapshot's.
 */
export function targetManifest(
  cx: ClusterContext,
  snapshot: DataSnapshot,
  target: string,
  replace?: ReadonlyMap<string, Buffer>,
): StagedManifest {
  const overrides = nodeOf(cx, target).config.overrides;
  const files = snapshot.files.map((f) => {
    const replacement = replace?.get(f.path);
    if (replacement)
      return {
        path: f.path,
        sha256: cx.snapshots.putObject(replacement),
        size: replacement.length,
        mode: f.mode,
      };
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

/** Stages a data snapshot on a standby on request (`POST /api/v1/snapshots/{id}/restore`). */
export function restoreSnapshotPlan(
  cx: ClusterContext,
  snapshot: DataSnapshot,
  node: string,
  trigger: string,
): OperationPlan<Record<string, never>> {
  return {
    kind: "restore-snapshot",
    mutating: true,
    trigger,
    params: { snapshot: snapshot.id, node },
    ctx: {},
    steps: [
      {
        key: `stage:${node}`,
        name: `stage ${snapshot.id} on ${node}`,
        timeoutMs: 300_000,
        run: async ({ op }) => {
          const result = await stageSnapshot(cx, node, snapshot, op.id);
          return `${result.files_uploaded} files uploaded (${result.bytes_moved} bytes), ${result.files_linked} unchanged`;
        },
      },
    ],
  };
}

/** Asks zigbee2mqtt for a fresh coordinator_backup.json (at most every sync.backup_refresh unless forced). */
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
