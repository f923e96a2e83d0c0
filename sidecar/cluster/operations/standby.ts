/**
 * A standby's coordinator, ready before it is needed ("armed"): its dongle holds the freshest
 * coordinator state the controller has, with the network frame counter already above what the
 * active can have sent by `failover.arm_horizon` from now, written and read back while the active
 * runs. A failover onto an armed standby then writes and reads nothing in the outage; without it
 * the outage holds a reset, a full write and a full read-back (a minute on a real CC2652 at
 * 115200 baud).
 *
 * Relies on: a dongle written by nvram_write or network_restore ends reset and runs no network
 * until zigbee2mqtt starts it (docs/failover.md, parking); every coordinator tool that writes a
 * dongle goes through withTool, which forgets what the node was armed with before it writes.
 */
import { createHash } from "node:crypto";
import { MAX_FRAME_COUNTER_INCREMENT } from "../../config/schema.js";
import {
  backupDate,
  type CoordinatorBackup,
  networkOfBackup,
  parseBackup,
  toZigpyBackup,
} from "../../coordinator/backup.js";
import { type CounterFact, type CounterPlan, resumeCounter } from "../../coordinator/frame-counter.js";
import {
  checkCounter,
  compareNvram,
  type NetworkIdentity,
  type NvramDump,
  networkOf,
  parseNvram,
  raiseFrameCounter,
} from "../../coordinator/nvram.js";
import type { DataSnapshot } from "../../store/snapshots.js";
import type { ClusterState } from "../../types.js";
import { type ClusterContext, nodeOf, stagingOf } from "../context.js";
import { type Step, StepFailure } from "../runner.js";
import { readNvram, toolStepTimeout, withTool } from "./common.js";

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
function armHorizon(cx: ClusterContext): number {
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
 * nvram_reset, then the source written with the network frame counter at `target`: zigpy-znp's
 * network_restore for a backup (-c lifts its counters by the difference), nvram_write for an
 * NVRAM snapshot. Returns how, and the dump written (NVRAM only).
 */
export async function restoreOnto(
  cx: ClusterContext,
  node: string,
  source: RestoreSource,
  target: number,
  signal: AbortSignal,
  notes: string[],
): Promise<{ method: string; dump?: NvramDump }> {
  // Before the dongle is touched: a counter that would wrap cannot be restored.
  checkCounter(target);
  await withTool(cx, node, "nvram_reset", signal, (n, s) => n.nvramReset(s), notes);
  if (source.backup) {
    const bump = target - networkOfBackup(source.backup.data).frame_counter;
    const text = JSON.stringify(toZigpyBackup(source.backup.data), null, 2);
    await withTool(cx, node, "network_restore", signal, (n, s) => n.networkRestore(text, bump, s), notes);
    return { method: `network_restore of ${source.label} with -c ${bump}` };
  }
  const nvram = source.nvram as NonNullable<RestoreSource["nvram"]>;
  const raised = raiseFrameCounter(nvram.dump, target);
  const text = JSON.stringify(raised, null, 4);
  await withTool(cx, node, "nvram_write", signal, (n, s) => n.nvramWrite(text, s), notes);
  return { method: `nvram_write of ${nvram.id} with frame counters raised to ${target}`, dump: raised };
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

function recordArmed(cx: ClusterContext, node: string, record: ArmedRecord): void {
  cx.state.update((s) => {
    s.armed = { ...(s.armed ?? {}), [node]: record };
  });
}

/**
 * Arms `node`: nothing to do when it is armed with the current source and its counter still
 * covers half the horizon; otherwise the source restored with the counter a horizon ahead and
 * read back. Never fails the sync it belongs to: why it is not armed is its detail (a failover
 * then restores in the outage, as without arming).
 */
export async function armStandby(
  cx: ClusterContext,
  node: string,
  signal: AbortSignal,
  operationId: string,
  notes: string[],
): Promise<string> {
  const { arm_standby: enabled } = cx.config.failover;
  if (!enabled) return "not armed: failover.arm_standby is off";
  const horizon = armHorizon(cx);
  const state = cx.state.get();
  if (state.active === node) return "not armed: it is the active node";
  if (state.fenced[node]) return "not armed: it is fenced";
  if (cx.unreachable(node)) return "not armed: it is unreachable";
  let source: RestoreSource | undefined;
  try {
    source = await restoreSourceOf(cx, node);
  } catch (error) {
    return `not armed: the controller's coordinator state is unusable (${(error as Error).message})`;
  }
  if (!source) return "not armed: the controller holds no coordinator state yet";
  const now = Date.now();
  const current = armedWith(cx, node, source, counterPlan(cx, source, now + horizon / 2).target);
  if (current)
    return `armed already with ${source.label} (frame counter ${current.counter} since ${current.at})`;
  const zigbeeNode = nodeOf(cx, node);
  try {
    if ((await zigbeeNode.serviceState(signal)) !== "stopped")
      return "not armed: zigbee2mqtt is not stopped there";
    const target = counterPlan(cx, source, now + horizon).target;
    checkCounter(target);
    const kept = await keepOtherNetwork(cx, node, source, signal, operationId, notes);
    const { method, dump } = await restoreOnto(cx, node, source, target, signal, notes);
    const readBack = parseNvram(await readNvram(cx, node, signal, notes), { requireNetwork: true });
    const network = networkOf(readBack);
    const wrong = identityMismatch(network, source.identity);
    if (wrong) throw new StepFailure(`${node}'s dongle read back another network: ${wrong}`);
    if (network.frame_counter < target)
      throw new StepFailure(`${node}'s dongle read back frame counter ${network.frame_counter} < ${target}`);
    if (dump) {
      const differences = compareNvram(dump, readBack);
      if (differences.length > 0)
        throw new StepFailure(`${differences.length} NVRAM items on ${node} did not read back identical`);
    }
    recordArmed(cx, node, {
      at: new Date().toISOString(),
      source: source.key,
      extended_pan_id: source.identity.extended_pan_id,
      counter: network.frame_counter,
      port: zigbeeNode.config.coordinator.port,
      operation_id: operationId,
    });
    return `armed: ${kept}${method}, read back (frame counter ${network.frame_counter})`;
  } catch (error) {
    if (signal.aborted) throw error;
    notes.push(`arming ${node} failed: ${(error as Error).message}`);
    return `not armed: ${(error as Error).message}`;
  }
}

/**
 * Before a dongle not known to hold this network is overwritten, what it holds is read, and kept
 * as an NVRAM snapshot when it is another network (a user's spare, an earlier test network).
 */
async function keepOtherNetwork(
  cx: ClusterContext,
  node: string,
  source: RestoreSource,
  signal: AbortSignal,
  operationId: string,
  notes: string[],
): Promise<string> {
  const armed = cx.state.get().armed?.[node];
  if (armed && armed.extended_pan_id === source.identity.extended_pan_id) return "";
  const held = parseNvram(await readNvram(cx, node, signal, notes));
  let network: NetworkIdentity;
  try {
    network = networkOf(held);
  } catch {
    return "";
  }
  if (!network.configured || /^0x(f{16}|0{16})$/.test(network.extended_pan_id)) return "";
  if (network.extended_pan_id === source.identity.extended_pan_id) return "";
  const saved = cx.snapshots.saveNvram({
    created_at: new Date().toISOString(),
    node,
    operation_id: operationId,
    network: { ...network, network_key: undefined },
    dump: held,
  });
  return `what it held (PAN ${network.pan_id}, ext PAN ${network.extended_pan_id}) kept as ${saved.id}; `;
}

function identityMismatch(network: NetworkIdentity, expected: RestoreIdentity): string | undefined {
  const wrong: string[] = [];
  if (network.ieee !== expected.ieee) wrong.push(`IEEE ${network.ieee} ≠ ${expected.ieee}`);
  if (network.pan_id !== expected.pan_id) wrong.push(`PAN ${network.pan_id} ≠ ${expected.pan_id}`);
  if (network.extended_pan_id !== expected.extended_pan_id)
    wrong.push(`ext PAN ${network.extended_pan_id} ≠ ${expected.extended_pan_id}`);
  if (network.channel !== expected.channel) wrong.push(`channel ${network.channel} ≠ ${expected.channel}`);
  return wrong.length ? wrong.join(", ") : undefined;
}

/**
 * Arming is never worth delaying a takeover for: it runs inside a sync, which holds the
 * operation lock for up to a minute on a real link. A takeover that is wanted preempts it (the
 * running tool is ended through its abort, the dongle is simply not armed), and no arming starts
 * again until the next sync.
 */
export class ArmingPreemption {
  #controller = new AbortController();

  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  preempt(reason: string): void {
    if (!this.#controller.signal.aborted) this.#controller.abort(new Error(reason));
  }

  /** A new sync begins: it may arm again. */
  reset(): void {
    if (this.#controller.signal.aborted) this.#controller = new AbortController();
  }
}

/** A sync's step: arm one standby after its data dir was staged. */
export function armStep(cx: ClusterContext, node: string, notes: string[]): Step<unknown> {
  return {
    key: `arm:${node}`,
    name: `arm coordinator on ${node}`,
    // A read (when it may hold another network), a reset, a write and the read back.
    timeoutMs: toolStepTimeout(cx, node, 4),
    run: async ({ signal, op }) => {
      const preempted = cx.arming.signal;
      if (preempted.aborted) return `not armed: ${(preempted.reason as Error).message}`;
      try {
        return await armStandby(cx, node, AbortSignal.any([signal, preempted]), op.id, notes);
      } catch (error) {
        // Only the preemption is swallowed: a step timeout or a shutdown stays a failure.
        if (!preempted.aborted || signal.aborted) throw error;
        return `not armed: ${(preempted.reason as Error).message} (its tool was ended; the next sync arms it)`;
      }
    },
  };
}
