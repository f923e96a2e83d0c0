/**
 * Pieces of a takeover that both its generic steps and the coordinator drivers use: the final
 * sync, running independent pieces side by side, installing the target's data dir, recording a
 * counter written onto a dongle.
 */
import type { ClusterContext } from "../context.js";
import { nodeOf, stagingOf } from "../context.js";
import type { Step } from "../runner.js";
import { captureDataDir, stageSnapshot } from "./data-dir.js";
import type { TakeoverContext } from "./takeover-context.js";

/** The final sync: zigbee2mqtt on the old active is stopped, its data dir is what B gets. */
export async function finalSync(
  cx: ClusterContext,
  ctx: TakeoverContext,
  signal: AbortSignal,
  operationId: string,
): Promise<string> {
  const from = ctx.from as string;
  const captured = await captureDataDir(cx, from, signal);
  ctx.dataSnapshot = cx.snapshots.saveData({
    created_at: new Date().toISOString(),
    node: from,
    operation_id: operationId,
    files: captured.files,
    notes: ["final sync of a switchover, zigbee2mqtt stopped", ...captured.notes],
  });
  const result = await stageSnapshot(cx, ctx.to, ctx.dataSnapshot, operationId);
  return `${ctx.dataSnapshot.id}: ${captured.filesRead} files read, ${result.files_uploaded} uploaded to ${ctx.to} (${result.bytes_moved} bytes)`;
}

/**
 * Runs independent pieces of one step side by side (they use different nodes or different
 * resources of one node) and waits for every one of them, failed or not, before the step ends:
 * a rollback never starts while a remote tool still runs. The detail names each piece and its time.
 */
export async function sideBySide(parts: Array<[string, () => Promise<string>]>): Promise<string> {
  const results = await Promise.allSettled(
    parts.map(async ([label, run]) => {
      const started = Date.now();
      const detail = await run();
      return `${label} (${((Date.now() - started) / 1000).toFixed(1)} s): ${detail}`;
    }),
  );
  const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
  if (failed) throw failed.reason;
  return results.map((r) => (r as PromiseFulfilledResult<string>).value).join("; ");
}

export async function installDataDir(cx: ClusterContext, ctx: TakeoverContext): Promise<string> {
  // What zigbee2mqtt wrote there while this node was active may go; nothing else.
  const known = cx.snapshots.latestDataOf(ctx.to)?.files.map((f) => f.path) ?? [];
  const manifest = await stagingOf(cx, ctx.to).installInto(
    nodeOf(cx, ctx.to).config.data_dir,
    cx.exclude,
    known,
  );
  return `${manifest.files.length} files from staged ${manifest.snapshot_id}`;
}

/** The controller wrote `counter` onto `node`'s dongle: a restore must later go above what it counts from there. */
export function recordIssue(cx: ClusterContext, node: string, counter: number, extendedPanId: string): void {
  cx.state.update((s) => {
    const prior = s.frame_counter_issued;
    // Another network's record says nothing about this one; this network's lower one is old news.
    if (prior && prior.extended_pan_id === extendedPanId && prior.counter > counter) return;
    s.frame_counter_issued = {
      at: new Date().toISOString(),
      node,
      counter,
      extended_pan_id: extendedPanId,
    };
  });
}

export function installStep(cx: ClusterContext, ctx: TakeoverContext): Step<TakeoverContext> {
  return {
    key: "install-data-dir",
    name: `write data dir on ${ctx.to}`,
    timeoutMs: 300_000,
    run: () => installDataDir(cx, ctx),
  };
}
