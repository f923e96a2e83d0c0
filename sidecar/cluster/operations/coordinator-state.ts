/**
 * The coordinator state the controller holds for a restore (the newest coordinator_backup.json or
 * the last NVRAM snapshot), the facts that bound the network frame counter, and the record of what
 * each standby's dongle was armed with. Driver-independent: the drivers decide how to write it.
 */
import { createHash } from "node:crypto";
import { MAX_FRAME_COUNTER_INCREMENT } from "../../config/schema.js";
import {
  backupDate,
  type CoordinatorBackup,
  networkOfBackup,
  parseBackup,
} from "../../coordinator/backup.js";
import { type CounterFact, type CounterPlan, resumeCounter } from "../../coordinator/frame-counter.js";
import { type NvramDump, networkOf } from "../../coordinator/nvram.js";
import type { DataSnapshot } from "../../store/snapshots.js";
import type { ClusterState } from "../../types.js";
import { type ClusterContext, nodeOf, stagingOf } from "../context.js";

export { forgetArmed } from "./common.js";

/** Identity of a network as a restore needs it (no key, no counter). */
export interface RestoreIdentity {
  ieee: string;
  pan_id: number;
  extended_pan_id: string;
  channel: number;
}

/**
 * The freshest coordinator state the controller holds for a restore: the newest
 * coordinator_backup.json, unless the last NVRAM snapshot is newer (a switchover read it after
 * zigbee2mqtt wrote its last backup).
 */
export interface RestoreSource {
  /** Equal keys mean equal content, frame counters aside: what an armed dongle is matched on. */
  key: string;
  /** For operation details: which snapshot or backup. */
  label: string;
  identity: RestoreIdentity;
  /** What bounds the counter the network has used (each known counter, with its time). */
  facts: CounterFact[];
  backup?: { data: CoordinatorBackup; file: DataSnapshot | undefined };
  nvram?: { id: string; created_at: string; dump: NvramDump };
}

export type ArmedRecord = NonNullable<ClusterState["armed"]>[string];

/** The last counter the controller wrote onto a dongle, as a fact about this network (none for another). */
export function issuedFacts(cx: ClusterContext, extendedPanId: string): CounterFact[] {
  const issued = cx.state.get().frame_counter_issued;
  if (!issued || issued.extended_pan_id !== extendedPanId) return [];
  return [
    {
      kind: "issue",
      source: `the counter written onto ${issued.node}`,
      counter: issued.counter,
      at: Date.parse(issued.at),
    },
  ];
}

/** An NVRAM snapshot's counter, when the dump was read. */
export function snapshotFact(snapshot: { id: string; created_at: string; dump: NvramDump }): CounterFact {
  return {
    kind: "reading",
    source: snapshot.id,
    counter: networkOf(snapshot.dump).frame_counter,
    at: Date.parse(snapshot.created_at),
  };
}

/** A coordinator_backup.json's counter, at the time herdsman wrote it (else when it was captured). */
export function backupFact(backup: CoordinatorBackup, file: DataSnapshot | undefined): CounterFact {
  return {
    kind: "reading",
    source: `coordinator_backup.json (${file?.id})`,
    counter: networkOfBackup(backup).frame_counter,
    at: backupDate(backup)?.getTime() ?? Date.parse(file?.created_at ?? ""),
  };
}

/**
 * A backup's content without what moves while nothing changes: its metadata (the date) and every
 * frame counter. Two backups with the same key restore the same network, devices and keys.
 */
export function backupContentKey(backup: CoordinatorBackup): string {
  const { metadata: _metadata, network_key, devices, ...rest } = backup;
  const stripped = {
    ...rest,
    network_key: { ...network_key, frame_counter: 0 },
    devices: devices.map((device) => {
      const linkKey = (device as { link_key?: Record<string, unknown> }).link_key;
      return linkKey ? { ...device, link_key: { ...linkKey, rx_counter: 0, tx_counter: 0 } } : device;
    }),
  };
  return createHash("sha256").update(JSON.stringify(stripped)).digest("hex").slice(0, 32);
}

/**
 * What a failover onto `target` would restore now. The backup comes from the target's staged
 * copy (what its data dir gets) or else the newest data snapshot. Undefined: nothing to restore.
 */
export async function restoreSourceOf(
  cx: ClusterContext,
  target: string,
): Promise<RestoreSource | undefined> {
  const staged = await stagingOf(cx, target).read();
  const latest = cx.snapshots.latestData();
  const backupFile = (staged?.snapshot_id && cx.snapshots.getData(staged.snapshot_id)) || latest;
  const backupEntry = backupFile?.files.find((f) => f.path === "coordinator_backup.json");
  const backup = backupEntry
    ? parseBackup(cx.snapshots.readObject(backupEntry.sha256).toString("utf8"))
    : undefined;
  const lastNvram = cx.state.get().last_nvram_snapshot;
  let nvram = lastNvram ? cx.snapshots.getNvram(lastNvram.id) : cx.snapshots.latestNvram();
  // Without a switchover's read, the newest NVRAM snapshot may be another network a standby's
  // dongle held before it was written (kept, not restored): only this network's counts.
  const network = backup
    ? networkOfBackup(backup).extended_pan_id
    : cx.watcher.status().network?.extended_pan_id;
  if (nvram && !lastNvram && network && networkOf(nvram.dump).extended_pan_id !== network) nvram = undefined;
  if (!backup && !nvram) return undefined;
  const backupTime = backup
    ? (backupDate(backup)?.getTime() ?? Date.parse(backupFile?.created_at ?? ""))
    : Number.NaN;
  const nvramTime = nvram ? Date.parse(nvram.created_at) : Number.NaN;
  const useBackup = !!backup && (!nvram || !(nvramTime > backupTime));
  const identity: RestoreIdentity = useBackup
    ? pickIdentity(networkOfBackup(backup as CoordinatorBackup))
    : pickIdentity(networkOf((nvram as NonNullable<typeof nvram>).dump));
  const facts = issuedFacts(cx, identity.extended_pan_id);
  if (nvram) facts.push(snapshotFact(nvram));
  if (backup) facts.push(backupFact(backup, backupFile));
  if (useBackup && backup && nvram && lastNvram?.backup_key === backupContentKey(backup)) {
    // The NVRAM was read on the stop that wrote a backup of this very content: its exact copy
    // carries everything the backup does, and the tables a backup leaves out. Same key, so an
    // arming from either counts for both.
    return {
      key: `backup:${lastNvram.backup_key}`,
      label: `${nvram.id} (the NVRAM copy of what coordinator_backup.json (${backupFile?.id}) holds)`,
      identity: pickIdentity(networkOf(nvram.dump)),
      facts,
      nvram: { id: nvram.id, created_at: nvram.created_at, dump: nvram.dump },
    };
  }
  if (useBackup && backup) {
    return {
      key: `backup:${backupContentKey(backup)}`,
      label: `coordinator_backup.json (${backupFile?.id})`,
      identity,
      facts,
      backup: { data: backup, file: backupFile },
    };
  }
  const copy = nvram as NonNullable<typeof nvram>;
  return {
    key: `nvram:${copy.id}`,
    label: copy.id,
    identity,
    facts,
    nvram: { id: copy.id, created_at: copy.created_at, dump: copy.dump },
  };
}

function pickIdentity(network: RestoreIdentity): RestoreIdentity {
  return {
    ieee: network.ieee,
    pan_id: network.pan_id,
    extended_pan_id: network.extended_pan_id,
    channel: network.channel,
  };
}

/**
 * failover.arm_horizon, cut so that one failover onto an armed standby skips at most
 * MAX_FRAME_COUNTER_INCREMENT of the 32-bit counter (thousands of failovers before it would wrap).
 */
export function armHorizon(cx: ClusterContext): number {
  const { arm_horizon: horizon, frame_counter_rate: rate } = cx.config.failover;
  return rate > 0 ? Math.min(horizon, (MAX_FRAME_COUNTER_INCREMENT / rate) * 1000) : horizon;
}

/** Where a restore from `source` must put the counter for a coordinator started at `at`. */
export function counterPlan(cx: ClusterContext, source: RestoreSource, at: number): CounterPlan {
  const { frame_counter_increment: increment, frame_counter_rate: rate } = cx.config.failover;
  // restoreSourceOf always gives at least one reading.
  return resumeCounter(source.facts, at, rate, increment) as CounterPlan;
}

/**
 * The node's record when its dongle still holds `source` (same content, same network, same
 * coordinator port) with a counter of at least `needed`; otherwise undefined.
 */
export function armedWith(
  cx: ClusterContext,
  node: string,
  source: RestoreSource,
  needed: number,
): ArmedRecord | undefined {
  const armed = cx.state.get().armed?.[node];
  if (!armed) return undefined;
  const port = nodeOf(cx, node).config.coordinator.port;
  const fits =
    armed.source === source.key &&
    armed.extended_pan_id === source.identity.extended_pan_id &&
    armed.port === port &&
    armed.counter >= needed;
  return fits ? armed : undefined;
}

export function recordArmed(cx: ClusterContext, node: string, record: ArmedRecord): void {
  cx.state.update((s) => {
    s.armed = { ...(s.armed ?? {}), [node]: record };
  });
}
