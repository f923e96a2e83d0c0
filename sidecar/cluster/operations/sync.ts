import { contentDigest, type DataSnapshot } from "../../store/snapshots.js";
import { type ClusterContext, nodeOf } from "../context.js";
import { PreconditionError } from "../errors.js";
import { type OperationPlan, type Step, StepFailure } from "../runner.js";
import { captureDataDir, refreshBackupStep, retention, stageSnapshot } from "./data-dir.js";
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
