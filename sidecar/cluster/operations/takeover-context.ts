import type { NvramDump } from "../../coordinator/nvram.js";
import type { DataSnapshot } from "../../store/snapshots.js";
import type { ClusterContext } from "../context.js";
import type { ExpectedNetwork } from "./common.js";
import type { ArmedRecord } from "./coordinator-state.js";

/**
 * One takeover's working state, shared by its generic steps and its coordinator driver's steps.
 * The NVRAM fields (dump … parking) belong to the zstack-nvram driver.
 */
export interface TakeoverContext {
  kind: "switchover" | "failover";
  from: string | null;
  to: string;
  expected: ExpectedNetwork;
  /** What is written to the target's dongle. */
  dump?: NvramDump;
  /** Failover: a dump read from the fenced old active just now, when it could still be read. */
  freshDump?: NvramDump;
  nvramSnapshotId?: string;
  dataSnapshot?: DataSnapshot;
  /**
   * What the target's dongle holds, read (or written and read back) before the old active
   * stopped: the outage then writes only the items that differ.
   */
  targetHolds?: NvramDump;
  /** The NVRAM write of the outage wrote only the changed items (verify falls back to a full write). */
  deltaWritten?: boolean;
  /**
   * The network frame counter written onto B before A stopped: above what A can have sent by the
   * time it is read (each known counter + failover.frame_counter_rate × its age). When A's read
   * confirms it (A's counter + the increment is not above it), the outage writes nothing for it.
   */
  preRaised?: number;
  /** Nothing was written onto B in the outage: what B was read to hold before is what it holds. */
  nothingWritten?: boolean;
  /** A's parking, started with B's write and awaited by B's verification (never by the start). */
  parking?: {
    controller: AbortController;
    done: Promise<{ ok: true; detail: string; ms: number } | { ok: false; error: unknown; ms: number }>;
  };
  /** Failover: the target's dongle was armed with the state restored (nothing written in the outage). */
  armed?: ArmedRecord;
  /** Set once the target is confirmed online: from here on there is no rolling back. */
  committed: boolean;
  /** A stop was sent to the old active's zigbee2mqtt by this operation (so rollback restarts it). */
  stoppedFrom: boolean;
  /** When that stop was sent (a backup zigbee2mqtt wrote on its stop is newer). */
  stopSentAt?: number;
  /** Writing to the target's dongle began (reset, write or restore). */
  touchedTo: boolean;
  /** The target's zigbee2mqtt may have been started (its start command was sent). */
  startedTo: boolean;
  fence?: { how: "ssh" | "command" | "none"; ok: boolean; detail: string };
  method?: string;
  frameCounter?: { before: number; restored: number };
  /** Rollback: the highest network frame counter the target's coordinator can have used. */
  targetReached?: number;
  outage: { offlineAt?: number; onlineAt?: number };
  notes: string[];
}

export interface TakeoverRequest {
  target?: string;
  reason?: string;
  trigger: string;
}

export function newContext(
  cx: ClusterContext,
  kind: TakeoverContext["kind"],
  from: string | null,
  to: string,
): TakeoverContext {
  return {
    kind,
    from,
    to,
    expected: expectedFromBridge(cx),
    committed: false,
    stoppedFrom: false,
    touchedTo: false,
    startedTo: false,
    outage: {},
    notes: [],
  };
}

/** What every takeover plan has in common: kind, trigger, reason, parameters, context. */
export function planOf(ctx: TakeoverContext, request: TakeoverRequest) {
  return {
    kind: ctx.kind,
    mutating: true,
    trigger: request.trigger,
    ...(request.reason ? { reason: request.reason } : {}),
    params: { from: ctx.from, to: ctx.to, requested_target: request.target ?? null },
    ctx,
  };
}

export function resultOf(ctx: TakeoverContext): Record<string, unknown> {
  const outage =
    ctx.outage.offlineAt && ctx.outage.onlineAt
      ? { outage_ms: ctx.outage.onlineAt - ctx.outage.offlineAt }
      : {};
  return {
    from: ctx.from,
    to: ctx.to,
    committed: ctx.committed,
    ...(ctx.dataSnapshot ? { data_snapshot: ctx.dataSnapshot.id } : {}),
    ...(ctx.nvramSnapshotId ? { nvram_snapshot: ctx.nvramSnapshotId } : {}),
    ...(ctx.fence ? { fence: ctx.fence } : {}),
    ...(ctx.method ? { method: ctx.method } : {}),
    ...(ctx.frameCounter ? { frame_counter: ctx.frameCounter } : {}),
    ...outage,
    ...(ctx.notes.length ? { notes: ctx.notes } : {}),
  };
}

export function expectedFromBridge(cx: ClusterContext): ExpectedNetwork {
  const bridge = cx.watcher.status();
  return {
    ...(bridge.coordinator_ieee ? { ieee: bridge.coordinator_ieee } : {}),
    ...(bridge.network
      ? {
          pan_id: bridge.network.pan_id,
          extended_pan_id: bridge.network.extended_pan_id,
          channel: bridge.network.channel,
        }
      : {}),
  };
}
