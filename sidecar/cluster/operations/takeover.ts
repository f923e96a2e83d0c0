import { networkOfBackup, parseBackup } from "../../coordinator/backup.js";
import { type CounterFact, resumeCounter } from "../../coordinator/frame-counter.js";
import {
  changedItems,
  checkCounter,
  compareNvram,
  countItems,
  extraItems,
  type NetworkIdentity,
  type NvramDump,
  networkOf,
  parseNvram,
  raiseFrameCounter,
} from "../../coordinator/nvram.js";
import type { DataSnapshot } from "../../store/snapshots.js";
import { type ClusterContext, nodeOf, stagingOf } from "../context.js";
import { PreconditionError } from "../errors.js";
import type { Monitor } from "../monitor.js";
import { type OperationPlan, type Step, StepFailure } from "../runner.js";
import {
  asStepFailure,
  type ExpectedNetwork,
  ONLINE_TIMEOUT_MS,
  readNvram,
  runFenceCommand,
  stopAndConfirm,
  toolStepTimeout,
  waitForBridge,
  waitOnline,
  withTool,
} from "./common.js";
import {
  type ArmedRecord,
  armedWith,
  backupFact,
  counterPlan,
  issuedFacts,
  restoreOnto,
  restoreSourceOf,
  snapshotFact,
} from "./standby.js";
import { captureDataDir, retention, stageSnapshot } from "./sync.js";

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

const OFFLINE_TIMEOUT_MS = 30_000;
/** How long a rollback waits for a target that was never started to confirm it is stopped. */
const STOP_PRECAUTION_MS = 10_000;

export interface TakeoverRequest {
  target?: string;
  reason?: string;
  trigger: string;
}

/** The standbys that could take over now, best first (priority, then id). */
export function readyStandbys(cx: ClusterContext, monitor: Monitor, exclude: string | null): string[] {
  return [...cx.nodes.values()]
    .filter((n) => n.id !== exclude && monitor.readiness(n.id).ready)
    .sort((a, b) => a.config.priority - b.config.priority || (a.id < b.id ? -1 : 1))
    .map((n) => n.id);
}

function chooseTarget(cx: ClusterContext, monitor: Monitor, active: string | null, target?: string): string {
  if (target) {
    nodeOf(cx, target);
    if (target === active) throw new PreconditionError(`${target} is already the active node`);
    return target;
  }
  const ready = readyStandbys(cx, monitor, active);
  if (ready[0]) return ready[0];
  const reasons = [...cx.nodes.keys()]
    .filter((id) => id !== active)
    .map((id) => `${id}: ${monitor.readiness(id).reasons.join(", ")}`);
  throw new PreconditionError(
    `no standby is ready to take over (${reasons.join("; ")}); name a target to override`,
    {
      standbys: reasons,
    },
  );
}

function preflightStep(cx: ClusterContext, ctx: TakeoverContext): Step<TakeoverContext> {
  return {
    key: "preflight",
    name: `preflight ${ctx.to}`,
    timeoutMs: 90_000,
    run: async () => {
      const node = nodeOf(cx, ctx.to);
      const problems: string[] = [];
      await node.run(["true"], { timeoutMs: 10_000 }).catch((error) => {
        throw new StepFailure(`${ctx.to} is not reachable: ${(error as Error).message}`);
      });
      const tools = await node.toolsPresent();
      if (!tools.ok) problems.push(`zigpy-znp tools: ${tools.detail}`);
      if (!(await node.portPresent()))
        problems.push(`coordinator port ${node.config.coordinator.port} is missing`);
      const staged = await stagingOf(cx, ctx.to).read();
      if (!staged) problems.push("no staged copy of the data dir (run a sync first)");
      if (problems.length > 0) throw new StepFailure(`${ctx.to} is not ready: ${problems.join("; ")}`);
      return `reachable, tools and ${node.config.coordinator.port} present, staged ${staged?.snapshot_id}`;
    },
  };
}

function ensureStoppedStep(cx: ClusterContext, ctx: TakeoverContext): Step<TakeoverContext> {
  return {
    key: "ensure-target-stopped",
    name: `make sure ${ctx.to} is stopped`,
    timeoutMs: 90_000,
    run: async ({ signal }) => {
      try {
        return await stopAndConfirm(cx, ctx.to, signal);
      } catch (error) {
        throw asStepFailure(error);
      }
    },
  };
}

function stopFromStep(cx: ClusterContext, ctx: TakeoverContext): Step<TakeoverContext> {
  const from = ctx.from as string;
  return {
    key: "stop-source",
    name: `stop ${from}`,
    timeoutMs: 120_000,
    run: async ({ signal }) => {
      ctx.stoppedFrom = true;
      let detail: string;
      try {
        detail = await stopAndConfirm(cx, from, signal);
      } catch (error) {
        throw asStepFailure(error);
      }
      const bridge = cx.watcher.status();
      if (!bridge.broker_connected) {
        ctx.notes.push("bridge/state could not be confirmed offline: the controller cannot see the broker");
        return `${detail}; bridge/state unknown (broker unreachable)`;
      }
      await waitForBridge(
        cx,
        (s) => s.state === "offline",
        OFFLINE_TIMEOUT_MS,
        signal,
        () => "bridge/state still online",
      );
      ctx.outage.offlineAt ??= Date.now();
      return `${detail}; bridge/state offline`;
    },
  };
}

/** The final sync: zigbee2mqtt on the old active is stopped, its data dir is what B gets. */
async function finalSync(
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
async function sideBySide(parts: Array<[string, () => Promise<string>]>): Promise<string> {
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

/** nvram_reset, then nvram_write of the whole dump: a dongle that then holds exactly `dump` (and defaults). */
async function resetAndWrite(
  cx: ClusterContext,
  id: string,
  dump: NvramDump,
  signal: AbortSignal,
  notes: string[],
): Promise<void> {
  await withTool(cx, id, "nvram_reset", signal, (n, s) => n.nvramReset(s), notes);
  const text = JSON.stringify(dump, null, 4);
  await withTool(cx, id, "nvram_write", signal, (n, s) => n.nvramWrite(text, s), notes);
}

function checkIdentity(dump: NvramDump, expected: ExpectedNetwork, where: string): NetworkIdentity {
  const network = networkOf(dump);
  const wrong: string[] = [];
  if (expected.ieee && network.ieee !== expected.ieee) wrong.push(`IEEE ${network.ieee} ≠ ${expected.ieee}`);
  if (expected.pan_id !== undefined && network.pan_id !== expected.pan_id)
    wrong.push(`PAN ${network.pan_id} ≠ ${expected.pan_id}`);
  if (expected.extended_pan_id && network.extended_pan_id !== expected.extended_pan_id) {
    wrong.push(`ext PAN ${network.extended_pan_id} ≠ ${expected.extended_pan_id}`);
  }
  if (wrong.length > 0)
    throw new StepFailure(`${where} holds another network than the one zigbee2mqtt ran: ${wrong.join(", ")}`);
  return network;
}

/** The controller wrote `counter` onto `node`'s dongle: a restore must later go above what it counts from there. */
function recordIssue(cx: ClusterContext, node: string, counter: number, extendedPanId: string): void {
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

/** Reads the old active's coordinator: the dump B gets, its counter raised by the increment. */
async function readSource(
  cx: ClusterContext,
  ctx: TakeoverContext,
  signal: AbortSignal,
  operationId: string,
): Promise<string> {
  const from = ctx.from as string;
  const text = await readNvram(cx, from, signal, ctx.notes);
  let dump: NvramDump;
  try {
    dump = parseNvram(text, { requireNetwork: true });
  } catch (error) {
    throw new StepFailure(`the NVRAM dump read from ${from} is not usable: ${(error as Error).message}`);
  }
  const network = checkIdentity(dump, ctx.expected, `${from}'s dongle`);
  ctx.expected = {
    ieee: network.ieee,
    pan_id: network.pan_id,
    extended_pan_id: network.extended_pan_id,
    channel: network.channel,
  };
  // The old coordinator kept the network running (and counting) since zigbee2mqtt let go of it,
  // until it is parked: the copy resumes above anything it can have sent.
  const raisedTo = Math.max(
    network.frame_counter + cx.config.failover.frame_counter_increment,
    ctx.preRaised ?? 0,
  );
  ctx.dump = raiseFrameCounter(dump, raisedTo);
  ctx.frameCounter = { before: network.frame_counter, restored: raisedTo };
  const snapshot = cx.snapshots.saveNvram({
    created_at: new Date().toISOString(),
    node: from,
    operation_id: operationId,
    network: { ...network, network_key: undefined },
    dump,
  });
  ctx.nvramSnapshotId = snapshot.id;
  cx.state.update((s) => {
    s.last_nvram_snapshot = { at: snapshot.created_at, id: snapshot.id, node: from };
  });
  return `${snapshot.id}: ${countItems(dump)} items, IEEE ${network.ieee}, PAN ${network.pan_id}, frame counter ${network.frame_counter}`;
}

/**
 * Outage, first part, once zigbee2mqtt on A has stopped: A's coordinator is read and A's data dir
 * synced, side by side (one uses A's serial port, the other its file system).
 */
function readSourceStep(cx: ClusterContext, ctx: TakeoverContext): Step<TakeoverContext> {
  const from = ctx.from as string;
  return {
    key: "read-source-nvram",
    name: `read NVRAM on ${from}`,
    timeoutMs: Math.max(toolStepTimeout(cx, from), 300_000),
    run: ({ signal, op }) =>
      sideBySide([
        ["NVRAM", () => readSource(cx, ctx, signal, op.id)],
        ["final sync", () => finalSync(cx, ctx, signal, op.id)],
      ]),
  };
}

/** Parks A's coordinator: a soft reset after which it holds its NVRAM but runs no network. */
async function parkSource(cx: ClusterContext, ctx: TakeoverContext, signal: AbortSignal): Promise<string> {
  const from = ctx.from as string;
  const legacy = ctx.dump?.LEGACY ?? {};
  const item = await withTool(
    cx,
    from,
    "park the coordinator",
    signal,
    (n, s) => n.parkCoordinator(legacy, s),
    ctx.notes,
  );
  return `soft reset (nvram_write of ${item} unchanged): the old coordinator holds, its NVRAM as read`;
}

/**
 * Before A stops (no outage yet): reads what B's dongle holds. When it holds no network, or
 * another one, what it held is kept as an NVRAM snapshot, then the controller's last copy of
 * this network is written and read back, so the outage writes only what changed since.
 * Relies on: B's zigbee2mqtt is stopped (the step before) and a dongle written by nvram_write
 * ends reset and runs no network until zigbee2mqtt starts it, as a parked one (docs/failover.md).
 */
function prepareTargetStep(cx: ClusterContext, ctx: TakeoverContext): Step<TakeoverContext> {
  const from = ctx.from as string;
  return {
    key: "prepare-target-nvram",
    name: `prepare NVRAM on ${ctx.to} (before ${from} stops)`,
    timeoutMs: toolStepTimeout(cx, ctx.to, 4),
    run: async ({ signal, op }) => {
      let held: NvramDump;
      try {
        held = parseNvram(await readNvram(cx, ctx.to, signal, ctx.notes));
      } catch (error) {
        if (signal.aborted) throw error;
        ctx.notes.push(
          `could not read ${ctx.to}'s dongle before the switchover: ${(error as Error).message}`,
        );
        return `could not read ${ctx.to}'s dongle: the whole dump is written during the outage`;
      }
      const heldNet = networkOrNone(held);
      if (!ctx.expected.extended_pan_id) {
        // The controller has not seen bridge/info: which network is the right one is unknown
        // until A's dump is read. Nothing is written now; what B holds is kept, just in case.
        ctx.targetHolds = held;
        const saved = heldNet ? keepHeld(cx, ctx, op.id, held, heldNet) : undefined;
        return `the network zigbee2mqtt runs is not known yet: nothing written before ${from} stops${saved ? `; ${saved}` : ""}`;
      }
      const preRaised = preRaisedCounter(cx, ctx.expected.extended_pan_id);
      if (heldNet && sameNetwork(heldNet, ctx.expected)) {
        ctx.targetHolds = held;
        const already = `${ctx.to} holds this network already (${countItems(held)} items, frame counter ${heldNet.frame_counter})`;
        if (preRaised === undefined) return `${already}: only what changed is written once ${from} stops`;
        if (heldNet.frame_counter >= preRaised) {
          // Higher than needed is as safe: kept, so that the outage need not lower it.
          ctx.preRaised = heldNet.frame_counter;
          return `${already}, above the ${preRaised} it needs: only what changed is written once ${from} stops`;
        }
        const { written, differences } = await writeAndReadBack(
          cx,
          ctx,
          held,
          raiseFrameCounter(held, preRaised),
          signal,
        );
        if (differences > 0)
          return `${already}; its counter raised to ${preRaised} (${written} items) did not read back identical: what differs is written once ${from} stops`;
        ctx.preRaised = preRaised;
        return `${already}; its counter raised to ${preRaised} (${written} items written and read back)`;
      }
      const copy = lastCopyOf(cx, ctx.expected);
      const kept: string[] = [];
      // Another network on B's dongle: nothing is overwritten before the controller holds it.
      if (heldNet) kept.push(keepHeld(cx, ctx, op.id, held, heldNet));
      if (!copy) {
        ctx.targetHolds = held;
        return `${ctx.to} holds ${heldNet ? "another network" : "no network"} and the controller has no NVRAM snapshot of this one yet: the whole dump is written during the outage${kept.length ? `; ${kept.join("; ")}` : ""}`;
      }
      ctx.touchedTo = true;
      const wanted = preRaised === undefined ? copy.dump : raiseFrameCounter(copy.dump, preRaised);
      await resetAndWrite(cx, ctx.to, wanted, signal, ctx.notes);
      const readBack = parseNvram(await readNvram(cx, ctx.to, signal, ctx.notes));
      const differences = compareNvram(wanted, readBack);
      if (differences.length > 0) {
        ctx.notes.push(`${ctx.to}: ${differences.length} items of ${copy.id} did not read back identical`);
        return `${copy.id} written but ${differences.length} items did not read back identical: the whole dump is written during the outage`;
      }
      ctx.targetHolds = readBack;
      if (preRaised !== undefined) ctx.preRaised = preRaised;
      const counter = preRaised === undefined ? "" : `, frame counter raised to ${preRaised}`;
      return [
        `reset, ${copy.id} written and read back (${countItems(copy.dump)} items${counter})`,
        ...kept,
      ].join("; ");
    },
  };
}

/** How long after B is prepared A's counter is read at the latest, as far as the pre-raise is concerned. */
const PRE_RAISE_LOOKAHEAD_MS = 120_000;

/**
 * The counter B gets before A stops: above what A can have sent by the time it is read, from
 * what the controller knows (the network's last NVRAM snapshot, the newest coordinator_backup.json,
 * the last counter it wrote onto a dongle), each + failover.frame_counter_rate × its age by then.
 * Undefined when it knows nothing of this network, or assumes no rate (then it cannot bound A).
 */
function preRaisedCounter(cx: ClusterContext, extendedPanId: string): number | undefined {
  const { frame_counter_increment: increment, frame_counter_rate: rate } = cx.config.failover;
  if (rate <= 0) return undefined;
  const copy = lastCopyOf(cx, { extended_pan_id: extendedPanId });
  const facts: CounterFact[] = copy ? [snapshotFact(copy)] : [];
  const latest = cx.snapshots.latestData();
  const entry = latest?.files.find((f) => f.path === "coordinator_backup.json");
  if (latest && entry) {
    try {
      const backup = parseBackup(cx.snapshots.readObject(entry.sha256).toString("utf8"));
      if (networkOfBackup(backup).extended_pan_id === extendedPanId) facts.push(backupFact(backup, latest));
    } catch {
      // An unreadable backup is no fact; the outage then raises from A's read as before.
    }
  }
  facts.push(...issuedFacts(cx, extendedPanId));
  if (facts.every((f) => f.kind === "issue")) return undefined;
  const target = resumeCounter(facts, Date.now() + PRE_RAISE_LOOKAHEAD_MS, rate, increment)?.target;
  if (target === undefined) return undefined;
  try {
    checkCounter(target);
  } catch {
    return undefined;
  }
  return target;
}

/**
 * Writes `wanted` onto B (only the items that differ from `held`, what B was just read to hold),
 * then reads B back: what B holds is recorded only from a read.
 */
async function writeAndReadBack(
  cx: ClusterContext,
  ctx: TakeoverContext,
  held: NvramDump,
  wanted: NvramDump,
  signal: AbortSignal,
): Promise<{ written: number; differences: number }> {
  const delta = changedItems(held, wanted);
  const written = countItems(delta);
  if (written === 0) {
    ctx.targetHolds = held;
    return { written, differences: 0 };
  }
  ctx.touchedTo = true;
  const text = JSON.stringify(delta, null, 4);
  await withTool(cx, ctx.to, "nvram_write", signal, (n, s) => n.nvramWrite(text, s), ctx.notes);
  const readBack = parseNvram(await readNvram(cx, ctx.to, signal, ctx.notes));
  ctx.targetHolds = readBack;
  return { written, differences: compareNvram(wanted, readBack).length };
}

function keepHeld(
  cx: ClusterContext,
  ctx: TakeoverContext,
  operationId: string,
  held: NvramDump,
  network: NetworkIdentity,
): string {
  const saved = cx.snapshots.saveNvram({
    created_at: new Date().toISOString(),
    node: ctx.to,
    operation_id: operationId,
    network: { ...network, network_key: undefined },
    dump: held,
  });
  return `what it held (PAN ${network.pan_id}, ext PAN ${network.extended_pan_id}) kept as ${saved.id}`;
}

function networkOrNone(dump: NvramDump): NetworkIdentity | undefined {
  try {
    const network = networkOf(dump);
    return network.configured && !/^0x(f{16}|0{16})$/.test(network.extended_pan_id) ? network : undefined;
  } catch {
    return undefined;
  }
}

function sameNetwork(network: NetworkIdentity, expected: ExpectedNetwork): boolean {
  return (
    (!expected.ieee || network.ieee === expected.ieee) &&
    (expected.pan_id === undefined || network.pan_id === expected.pan_id) &&
    (!expected.extended_pan_id || network.extended_pan_id === expected.extended_pan_id) &&
    (expected.channel === undefined || network.channel === expected.channel)
  );
}

/** The controller's newest NVRAM snapshot of the network zigbee2mqtt runs, if any. */
function lastCopyOf(cx: ClusterContext, expected: ExpectedNetwork) {
  const last = cx.state.get().last_nvram_snapshot;
  const candidate = last ? cx.snapshots.getNvram(last.id) : cx.snapshots.latestNvram();
  if (!candidate) return undefined;
  const network = networkOrNone(candidate.dump);
  return network && sameNetwork(network, expected) ? candidate : undefined;
}

/** Writes A's dump onto B: only the changed items when B holds the same items, else reset and all. */
async function writeTarget(cx: ClusterContext, ctx: TakeoverContext, signal: AbortSignal): Promise<string> {
  const dump = ctx.dump;
  if (!dump) throw new StepFailure("no NVRAM dump to write");
  const held = ctx.targetHolds;
  const extra = held ? extraItems(held, dump) : [];
  ctx.touchedTo = true;
  if (held && extra.length === 0) {
    const delta = changedItems(held, dump);
    ctx.deltaWritten = true;
    if (countItems(delta) === 0) {
      ctx.nothingWritten = true;
      return `all ${countItems(dump)} items already identical (${ctx.to} was read to hold them before ${ctx.from} stopped): nothing written`;
    }
    const text = JSON.stringify(delta, null, 4);
    await withTool(cx, ctx.to, "nvram_write", signal, (n, s) => n.nvramWrite(text, s), ctx.notes);
    return `${countItems(delta)} changed items written (of ${countItems(dump)})`;
  }
  ctx.deltaWritten = false;
  await resetAndWrite(cx, ctx.to, dump, signal, ctx.notes);
  const why = held
    ? `${extra.length} items there that the dump lacks, e.g. ${extra[0]}`
    : "its contents unknown";
  return `reset (${why}), all ${countItems(dump)} items written`;
}

function verifyTarget(cx: ClusterContext, ctx: TakeoverContext) {
  return async (signal: AbortSignal): Promise<string> => {
    const dump = ctx.dump as NvramDump;
    // Verified already: B was read before the outage, holding every item of the dump, and nothing
    // was written since (zigbee2mqtt then checks the network on start, waitOnline its identity).
    if (ctx.nothingWritten)
      return `nothing written in the outage: the read of ${ctx.to} before ${ctx.from} stopped holds all ${countItems(dump)} items`;
    let differences = compareNvram(dump, parseNvram(await readNvram(cx, ctx.to, signal, ctx.notes)));
    let how = `all ${countItems(dump)} items read back identical`;
    if (differences.length > 0 && ctx.deltaWritten) {
      // What B was read to hold before the outage is not what it holds: write everything.
      ctx.notes.push(
        `${ctx.to}: ${differences.length} items differ after the changed items were written (e.g. ${differences[0]?.item}); reset and wrote the whole dump`,
      );
      ctx.targetHolds = undefined;
      await writeTarget(cx, ctx, signal);
      differences = compareNvram(dump, parseNvram(await readNvram(cx, ctx.to, signal, ctx.notes)));
      how = `after a full rewrite, ${how}`;
    }
    if (differences.length > 0) {
      throw new StepFailure(
        `${differences.length} NVRAM items on ${ctx.to} differ from the dump`,
        differences
          .slice(0, 20)
          .map((d) => `${d.item}: expected ${d.expected ?? "(absent)"}, read ${d.actual ?? "(absent)"}`)
          .join("\n"),
      );
    }
    return how;
  };
}

/**
 * Outage, second part: B's dongle written while A's coordinator is parked (different nodes). B is
 * written only once A's dump was read and validated. The parking goes on beside the write and the
 * verification; the verification step ends only once it ended too, and B is started only after
 * that, so one coordinator at most runs the network. A failure waits for the parking to end.
 */
function writeTargetStep(cx: ClusterContext, ctx: TakeoverContext): Step<TakeoverContext> {
  return {
    key: "write-target-nvram",
    name: `write NVRAM on ${ctx.to}`,
    timeoutMs: toolStepTimeout(cx, ctx.to, 2),
    run: async ({ signal }) => {
      // Its own signal: the parking outlives this step (the verification's abort ends it).
      const parking = new AbortController();
      const parkStarted = Date.now();
      ctx.parking = {
        controller: parking,
        done: parkSource(cx, ctx, parking.signal).then(
          (detail) => ({ ok: true as const, detail, ms: Date.now() - parkStarted }),
          (error: unknown) => ({ ok: false as const, error, ms: Date.now() - parkStarted }),
        ),
      };
      try {
        return await writeTarget(cx, ctx, signal);
      } catch (error) {
        await ctx.parking.done;
        throw error;
      }
    },
  };
}

/**
 * Outage, third part: B's dongle read back while its data dir is installed (port vs file system),
 * and until A's parking (started with the write) has ended.
 */
function verifyTargetStep(cx: ClusterContext, ctx: TakeoverContext): Step<TakeoverContext> {
  const from = ctx.from as string;
  return {
    key: "verify-target-nvram",
    name: `verify NVRAM on ${ctx.to} and write its data dir`,
    timeoutMs: Math.max(toolStepTimeout(cx, ctx.to, 4), toolStepTimeout(cx, from), 300_000),
    run: async ({ signal }) => {
      const parking = ctx.parking;
      // A step abort (timeout, shutdown) also ends the parking's remote tool.
      const onAbort = () => parking?.controller.abort(signal.reason);
      signal.addEventListener("abort", onAbort, { once: true });
      try {
        return await sideBySide([
          ["verify", () => verifyTarget(cx, ctx)(signal)],
          ["data dir", () => installDataDir(cx, ctx)],
          [
            `park ${from}`,
            async () => {
              const outcome = await parking?.done;
              if (!outcome) throw new StepFailure(`${from} was not parked`);
              if (!outcome.ok) throw outcome.error;
              return `${outcome.detail}; started with the write, took ${(outcome.ms / 1000).toFixed(1)} s`;
            },
          ],
        ]);
      } finally {
        signal.removeEventListener("abort", onAbort);
      }
    },
  };
}

async function installDataDir(cx: ClusterContext, ctx: TakeoverContext): Promise<string> {
  // What zigbee2mqtt wrote there while this node was active may go; nothing else.
  const known = cx.snapshots.latestDataOf(ctx.to)?.files.map((f) => f.path) ?? [];
  const manifest = await stagingOf(cx, ctx.to).installInto(
    nodeOf(cx, ctx.to).config.data_dir,
    cx.exclude,
    known,
  );
  return `${manifest.files.length} files from staged ${manifest.snapshot_id}`;
}

function installStep(cx: ClusterContext, ctx: TakeoverContext): Step<TakeoverContext> {
  return {
    key: "install-data-dir",
    name: `write data dir on ${ctx.to}`,
    timeoutMs: 300_000,
    run: () => installDataDir(cx, ctx),
  };
}

function startStep(cx: ClusterContext, ctx: TakeoverContext): Step<TakeoverContext>[] {
  return [
    {
      key: "start-target",
      name: `start ${ctx.to}`,
      timeoutMs: 90_000,
      run: async ({ signal }) => {
        ctx.startedTo = true;
        // From here B's coordinator may count on from the counter it was given.
        if (ctx.frameCounter && ctx.expected.extended_pan_id)
          recordIssue(cx, ctx.to, ctx.frameCounter.restored, ctx.expected.extended_pan_id);
        try {
          await nodeOf(cx, ctx.to).startService(signal);
        } catch (error) {
          throw asStepFailure(error);
        }
        return "service started";
      },
    },
    {
      key: "wait-target-online",
      name: `wait for ${ctx.to} online`,
      timeoutMs: ONLINE_TIMEOUT_MS + 5_000,
      run: async ({ signal }) => {
        const detail = await waitOnline(cx, ctx.to, ctx.expected, ONLINE_TIMEOUT_MS, signal);
        ctx.outage.onlineAt = Date.now();
        ctx.committed = true;
        return detail;
      },
    },
  ];
}

function persistStep(cx: ClusterContext, ctx: TakeoverContext): Step<TakeoverContext> {
  return {
    key: "persist-active",
    name: `persist ${ctx.to} as active`,
    timeoutMs: 10_000,
    run: async ({ op }) => {
      const snapshots = [ctx.dataSnapshot?.id, ctx.nvramSnapshotId].filter((s): s is string => !!s);
      cx.state.update((s) => {
        s.active = ctx.to;
        delete s.fenced[ctx.to];
        // It runs the network now: its counter and tables move on from what it was armed with.
        if (s.armed) delete s.armed[ctx.to];
        s.last_switchover = {
          at: new Date().toISOString(),
          operation_id: op.id,
          from: ctx.from,
          to: ctx.to,
          kind: ctx.kind,
          snapshots,
        };
      });
      return `${ctx.to} is the active node`;
    },
  };
}

/** After a takeover every other reachable node gets a staged copy of the new active's data. */
function restageStep(cx: ClusterContext, ctx: TakeoverContext, node: string): Step<TakeoverContext> {
  return {
    key: `stage:${node}`,
    name: `stage on ${node}`,
    timeoutMs: 300_000,
    continueOnFailure: true,
    run: async ({ op }) => {
      const snapshot = ctx.dataSnapshot ?? cx.snapshots.latestData();
      if (!snapshot) return "no snapshot to stage";
      // As in a sync: a node monitoring already knows unreachable fails at once, not after SSH gives up.
      if (cx.unreachable(node))
        throw new StepFailure(`${node} is unreachable (monitoring has had no answer from it): not staged`);
      const result = await stageSnapshot(cx, node, snapshot, op.id);
      cx.snapshots.prune(retention(cx));
      return `${result.files_uploaded} files uploaded (${result.bytes_moved} bytes)`;
    },
  };
}

/**
 * A coordinator that ran the network with a copy's counters must stop doing so: Z-Stack keeps
 * running the network after zigbee2mqtt exits. Reads how far its network frame counter got, then
 * wipes its NVRAM (nvram_reset ends with a reset: the chip comes back with no network). Returns
 * the counter, or undefined when it could not be read.
 */
export async function retireCopy(
  cx: ClusterContext,
  id: string,
  signal: AbortSignal,
  notes: string[],
): Promise<number | undefined> {
  let reached: number | undefined;
  try {
    const text = await readNvram(cx, id, signal, notes);
    reached = networkOf(parseNvram(text, { requireNetwork: true })).frame_counter;
  } catch (error) {
    notes.push(`could not read the frame counter on ${id}: ${(error as Error).message}`);
  }
  await withTool(cx, id, "nvram_reset", signal, (n, s) => n.nvramReset(s), notes);
  return reached;
}

/**
 * A coordinator resumes the network after another one ran it with higher counters: its frames must
 * count on from above anything the other sent, or devices would drop them. Raises its network
 * frame counter to `above` + failover.frame_counter_increment; with `above` unknown, to its own
 * counter + twice the increment (a copy starts at most one increment above the counter it was
 * read with, and the increment covers what it sent). Only the counter items are written
 * (nvram_write, which ends with a reset, as parking does); the rest of its NVRAM is kept.
 */
export async function raiseCounter(
  cx: ClusterContext,
  id: string,
  above: number | undefined,
  signal: AbortSignal,
  notes: string[],
): Promise<string> {
  const increment = cx.config.failover.frame_counter_increment;
  const text = await readNvram(cx, id, signal, notes);
  const dump = parseNvram(text, { requireNetwork: true });
  const before = networkOf(dump).frame_counter;
  const target = (above ?? before + increment) + increment;
  if (before >= target) return `frame counter ${before} is already above ${above}`;
  const raised = changedItems(dump, raiseFrameCounter(dump, target));
  await withTool(
    cx,
    id,
    "nvram_write",
    signal,
    (n, s) => n.nvramWrite(JSON.stringify(raised, null, 4), s),
    notes,
  );
  recordIssue(cx, id, target, networkOf(dump).extended_pan_id);
  return `frame counter ${before} → ${target} (${countItems(raised)} items written)`;
}

/**
 * Once the target's zigbee2mqtt was started, its coordinator may have started the network and sent
 * frames with the copy's counters, which are above the old active's: the copy is retired.
 */
function retireCopyStep(cx: ClusterContext, ctx: TakeoverContext): Step<TakeoverContext> {
  return {
    key: "retire-target-copy",
    name: `retire the copy on ${ctx.to}`,
    timeoutMs: toolStepTimeout(cx, ctx.to, 2),
    run: async ({ signal }) => {
      const reached = await retireCopy(cx, ctx.to, signal, ctx.notes);
      ctx.targetReached = Math.max(reached ?? 0, ctx.frameCounter?.restored ?? 0);
      return `${ctx.to}'s coordinator ${reached === undefined ? "(counter unknown)" : `had counted to ${reached}`}; its NVRAM is reset, it runs no network`;
    },
  };
}

/** The old active resumes above anything the retired copy can have sent. */
function raiseFromCounterStep(cx: ClusterContext, ctx: TakeoverContext, from: string): Step<TakeoverContext> {
  return {
    key: "raise-source-counter",
    name: `raise the frame counter on ${from}`,
    timeoutMs: toolStepTimeout(cx, from, 2),
    run: async ({ signal }) => {
      const above = ctx.targetReached ?? ctx.frameCounter?.restored;
      const detail = await raiseCounter(cx, from, above, signal, ctx.notes);
      return `${detail}, above the ${above ?? "(unknown)"} ${ctx.to} can have used`;
    },
  };
}

/**
 * The target was started and cannot be reached to stop it: its coordinator may run the network
 * (with the copy's higher counters). The old active stays stopped and parked, and the target is
 * recorded as the active node, so that nothing restarts the old one in place beside it: the
 * failover policy handles it as any active that is down (fence it, then a failover, whose restore
 * goes above the counter written onto it). The old active gets a staged copy of its own final
 * data, which makes it a ready standby for that failover without going back to older data.
 */
async function presumeTargetActive(
  cx: ClusterContext,
  ctx: TakeoverContext,
  error: unknown,
  signal: AbortSignal,
  operationId: string,
): Promise<StepFailure> {
  const from = ctx.from;
  let staged = "";
  if (from && ctx.dataSnapshot && !cx.unreachable(from)) {
    try {
      await stageSnapshot(cx, from, ctx.dataSnapshot, operationId);
      staged = `; ${from} has its own final data (${ctx.dataSnapshot.id}) staged`;
    } catch (stageError) {
      if (signal.aborted) throw stageError;
      ctx.notes.push(`could not stage ${ctx.dataSnapshot.id} on ${from}: ${(stageError as Error).message}`);
    }
  }
  cx.state.update((s) => {
    s.active = ctx.to;
  });
  const cause = asStepFailure(error);
  return new StepFailure(
    `${ctx.to} was started and cannot be reached to stop it (${cause.message}): it may run the network, so ${from ?? "no other node"} stays stopped and ${ctx.to} is recorded as the active node${staged}`,
    cause instanceof StepFailure ? cause.output : undefined,
  );
}

/**
 * Puts the old active back when a takeover fails before the target is confirmed online. Undoes
 * only what the operation did: a takeover that failed before it stopped the old active or touched
 * the target (a failed preflight) has nothing to undo, so it ends "failed" and the running active
 * is left alone. `canRestartFrom`: the old active was stopped by this operation over SSH.
 */
function rollbackSteps(
  cx: ClusterContext,
  ctx: TakeoverContext,
  canRestartFrom: boolean,
): Step<TakeoverContext>[] {
  if (!canRestartFrom && !ctx.touchedTo && !ctx.startedTo) return [];
  const steps: Step<TakeoverContext>[] = [
    {
      key: "rollback-stop-target",
      name: `stop ${ctx.to}`,
      timeoutMs: 90_000,
      run: async ({ signal, op }) => {
        // Never started there and known unreachable: no need to wait for SSH to give up again.
        if (!ctx.startedTo && cx.unreachable(ctx.to))
          return `${ctx.to} is unreachable; zigbee2mqtt was never started there`;
        try {
          // Never started there: the stop is only a precaution, and the old active waits for it
          // (an unreachable node would hold it for SSH's three connection attempts, ~30 s).
          const bound = ctx.startedTo
            ? signal
            : AbortSignal.any([signal, AbortSignal.timeout(STOP_PRECAUTION_MS)]);
          return await stopAndConfirm(cx, ctx.to, bound);
        } catch (error) {
          // Never started there: it cannot be running, the old active may come back.
          if (!ctx.startedTo)
            return `${ctx.to} did not answer (${(error as Error).message}); zigbee2mqtt was never started there`;
          // Maybe running and out of reach: starting the old active too could make two coordinators.
          throw await presumeTargetActive(cx, ctx, error, signal, op.id);
        }
      },
    },
  ];
  if (ctx.startedTo) steps.push(retireCopyStep(cx, ctx));
  if (ctx.from && canRestartFrom) {
    const from = ctx.from;
    if (ctx.startedTo) steps.push(raiseFromCounterStep(cx, ctx, from));
    steps.push(
      {
        key: "restart-source",
        name: `start ${from} again`,
        timeoutMs: 90_000,
        run: async ({ signal }) => {
          try {
            await nodeOf(cx, from).startService(signal);
          } catch (error) {
            throw asStepFailure(error);
          }
          return ctx.startedTo
            ? "service started, frame counter above the target's"
            : "service started on its untouched network";
        },
      },
      {
        key: "wait-source-online",
        name: `wait for ${from} online`,
        timeoutMs: ONLINE_TIMEOUT_MS + 5_000,
        run: async ({ signal }) => {
          const detail = await waitOnline(cx, from, ctx.expected, ONLINE_TIMEOUT_MS, signal);
          cx.state.update((s) => {
            delete s.fenced[from];
          });
          return detail;
        },
      },
    );
  }
  return steps;
}

function resultOf(ctx: TakeoverContext): Record<string, unknown> {
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

function expectedFromBridge(cx: ClusterContext): ExpectedNetwork {
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

function newContext(
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
function planOf(ctx: TakeoverContext, request: TakeoverRequest) {
  return {
    kind: ctx.kind,
    mutating: true,
    trigger: request.trigger,
    ...(request.reason ? { reason: request.reason } : {}),
    params: { from: ctx.from, to: ctx.to, requested_target: request.target ?? null },
    ctx,
  };
}

/**
 * Planned switchover: the active is reachable and is stopped cleanly, so its coordinator's NVRAM
 * can be read exactly and cloned onto the target's dongle. Any failure before the target is
 * confirmed online rolls back: target stopped, the old active started again on its untouched dongle.
 */
export function switchoverPlan(
  cx: ClusterContext,
  monitor: Monitor,
  request: TakeoverRequest,
): OperationPlan<TakeoverContext> {
  // An unknown target is the request's fault (404) before anything about the cluster's state.
  if (request.target) nodeOf(cx, request.target);
  const active = cx.state.get().active;
  if (!active) throw new PreconditionError("no active node is known: use failover to bring one up");
  const to = chooseTarget(cx, monitor, active, request.target);
  const ctx = newContext(cx, "switchover", active, to);
  const others = [...cx.nodes.keys()].filter((id) => id !== to);
  return {
    ...planOf(ctx, request),
    steps: [
      preflightStep(cx, ctx),
      ensureStoppedStep(cx, ctx),
      prepareTargetStep(cx, ctx),
      stopFromStep(cx, ctx),
      readSourceStep(cx, ctx),
      writeTargetStep(cx, ctx),
      verifyTargetStep(cx, ctx),
      ...startStep(cx, ctx),
      persistStep(cx, ctx),
      ...others.map((id) => restageStep(cx, ctx, id)),
    ],
    rollback: (_failed, c) => (c.committed ? [] : rollbackSteps(cx, c, c.stoppedFrom)),
    result: resultOf,
  };
}

/**
 * Unplanned failover: the active is dead or unreachable. Fence it first, then bring the target up
 * from the freshest coordinator state the controller holds, never with a lower frame counter than
 * the network has used (see docs/failover.md for the choice and its trade-offs).
 */
export function failoverPlan(
  cx: ClusterContext,
  monitor: Monitor,
  request: TakeoverRequest,
): OperationPlan<TakeoverContext> {
  const active = cx.state.get().active;
  const to = chooseTarget(cx, monitor, active, request.target);
  const ctx = newContext(cx, "failover", active, to);
  // The network is already down when a failover starts.
  ctx.outage.offlineAt = Date.now();
  // The target is checked before the old active is fenced: a failover that cannot happen must not
  // take down an old active that may still be running the network.
  const steps: Step<TakeoverContext>[] = [preflightStep(cx, ctx)];
  if (active) steps.push(fenceStep(cx, ctx));
  steps.push(
    ensureStoppedStep(cx, ctx),
    restoreCoordinatorStep(cx, ctx),
    verifyRestoreStep(cx, ctx),
    installStep(cx, ctx),
    ...startStep(cx, ctx),
    persistStep(cx, ctx),
    ...[...cx.nodes.keys()].filter((id) => id !== to && id !== active).map((id) => restageStep(cx, ctx, id)),
  );
  return {
    ...planOf(ctx, request),
    steps,
    // The old active can only be restarted if it was reachable and stopped by us over SSH.
    rollback: (_failed, c) =>
      c.committed ? [] : rollbackSteps(cx, c, c.stoppedFrom && c.fence?.how === "ssh" && c.fence.ok),
    result: resultOf,
  };
}

function fenceStep(cx: ClusterContext, ctx: TakeoverContext): Step<TakeoverContext> {
  const from = ctx.from as string;
  return {
    key: "fence-source",
    name: `fence ${from}`,
    // The stop, then reading and parking the coordinator when it answers (two tool runs, no retries).
    timeoutMs: 120_000 + toolStepTimeout(cx, from, 2) / 3,
    run: async ({ signal }) => {
      const node = nodeOf(cx, from);
      // Bounded waits on a node that may be dying; the abort also ends the remote command.
      const within = (ms: number) => AbortSignal.any([signal, AbortSignal.timeout(ms)]);
      // Monitoring already had no answer from it: trying SSH again only lengthens the outage.
      const skipSsh = cx.unreachable(from);
      if (skipSsh)
        ctx.notes.push(`${from} is unreachable (monitoring has had no answer from it): not tried over SSH`);
      try {
        if (skipSsh) throw new Error("unreachable");
        // The first answer gets what monitoring gives a probe: a node that cannot answer that
        // quickly is fenced by the fence command instead, and every second here is outage.
        const state = await node.serviceState(within(cx.config.monitor.probe_timeout));
        if (state !== "stopped") await node.stopService(within(30_000));
        const after = await node.serviceState(within(8_000));
        if (after !== "running") {
          ctx.fence = { how: "ssh", ok: true, detail: `zigbee2mqtt on ${from} stopped over SSH` };
          ctx.stoppedFrom = true;
          ctx.fence.detail += await readAndPark(cx, ctx, from, signal);
        }
      } catch (error) {
        if (!skipSsh) ctx.notes.push(`could not stop ${from} over SSH: ${(error as Error).message}`);
      }
      if (!ctx.fence) {
        const command = cx.config.failover.fence_command;
        if (command) {
          const result = await runFenceCommand(command, from, 60_000);
          ctx.fence = {
            how: "command",
            ok: result.code === 0,
            detail: `fence command exited ${result.code}${result.output ? `: ${result.output.trim().slice(-300)}` : ""}`,
          };
        } else {
          ctx.fence = {
            how: "none",
            ok: false,
            detail: `${from} is unreachable and no failover.fence_command is configured; it stays marked fenced and its zigbee2mqtt is stopped as soon as it is seen again`,
          };
        }
      }
      cx.state.update((s) => {
        s.fenced[from] = {
          at: new Date().toISOString(),
          reason: `failover to ${ctx.to}: ${ctx.fence?.detail}`,
        };
      });
      if (!ctx.fence.ok) cx.alerts.raise("fence_failed", "warning", ctx.fence.detail, from);
      return ctx.fence.detail;
    },
  };
}

/**
 * The old active answers over SSH: its coordinator's own NVRAM is fresher than anything the
 * controller holds, so read it, and park the chip so that it stops running the network.
 */
async function readAndPark(
  cx: ClusterContext,
  ctx: TakeoverContext,
  from: string,
  signal: AbortSignal,
): Promise<string> {
  const node = nodeOf(cx, from);
  try {
    const dump = parseNvram(await node.nvramRead(signal), { requireNetwork: true });
    const network = checkIdentity(dump, ctx.expected, `${from}'s dongle`);
    ctx.freshDump = dump;
    await node.parkCoordinator(dump.LEGACY ?? {}, signal);
    return `; its coordinator was read (frame counter ${network.frame_counter}) and parked`;
  } catch (error) {
    ctx.notes.push(`could not read or park the coordinator on ${from}: ${(error as Error).message}`);
    return `; its coordinator could not be read or parked (${(error as Error).message.slice(0, 200)})`;
  }
}

/**
 * Brings the target's dongle to the freshest coordinator state the controller holds, with the
 * network frame counter raised above anything the old coordinator can have used: each known
 * counter (the last NVRAM snapshot, the newest coordinator_backup.json, the last counter the
 * controller wrote onto a dongle) plus failover.frame_counter_rate × its age, the highest of those
 * + failover.frame_counter_increment (coordinator/frame-counter.ts).
 * When the backup is at least as new as the NVRAM snapshot, zigpy-znp's network_restore writes it
 * (with -c so the counter lands on the target); otherwise the NVRAM snapshot is written with its
 * counters raised.
 */
function restoreCoordinatorStep(cx: ClusterContext, ctx: TakeoverContext): Step<TakeoverContext> {
  return {
    key: "restore-target-coordinator",
    name: `restore coordinator on ${ctx.to}`,
    timeoutMs: toolStepTimeout(cx, ctx.to, 2),
    run: async ({ signal }) => {
      ctx.touchedTo = true;
      const { frame_counter_increment: increment, frame_counter_rate: rate } = cx.config.failover;
      if (ctx.freshDump) {
        ctx.touchedTo = true;
        const fresh = networkOf(ctx.freshDump);
        const plan = resumeCounter(
          [
            { kind: "reading", source: `${ctx.from}'s dongle`, counter: fresh.frame_counter, at: Date.now() },
            ...issuedFacts(cx, fresh.extended_pan_id),
          ],
          Date.now(),
          rate,
          increment,
        );
        const target = plan?.target ?? fresh.frame_counter + increment;
        ctx.expected = {
          ieee: fresh.ieee,
          pan_id: fresh.pan_id,
          extended_pan_id: fresh.extended_pan_id,
          channel: fresh.channel,
        };
        ctx.dump = raiseFrameCounter(ctx.freshDump, target);
        ctx.method = `nvram_write of the NVRAM just read from ${ctx.from}, frame counters raised to ${target}`;
        await resetAndWrite(cx, ctx.to, ctx.dump, signal, ctx.notes);
        ctx.frameCounter = { before: fresh.frame_counter, restored: target };
        return `${ctx.method}: frame counter ${fresh.frame_counter} → ${target}`;
      }
      const source = await restoreSourceOf(cx, ctx.to);
      if (!source) {
        throw new StepFailure(
          "the controller holds neither an NVRAM snapshot nor a coordinator_backup.json: nothing to restore from",
        );
      }
      const plan = counterPlan(cx, source, Date.now());
      ctx.expected = { ...source.identity };
      const why = `${plan.from.source} at ${plan.from.counter}${plan.allowance ? ` + ${plan.allowance} for its age` : ""} + ${increment}`;
      const armed = armedWith(cx, ctx.to, source, plan.target);
      if (armed) {
        // Written and read back while the old active still ran (a sync's arming); nothing since
        // wrote that dongle (withTool forgets an armed record before any write).
        ctx.armed = armed;
        ctx.method = `armed at ${armed.at} with ${source.label}, frame counter ${armed.counter}: nothing written`;
        ctx.frameCounter = { before: plan.from.counter, restored: armed.counter };
        return `${ctx.method} (it needs at least ${plan.target}: ${why})`;
      }
      ctx.touchedTo = true;
      const restored = await restoreOnto(cx, ctx.to, source, plan.target, signal, ctx.notes);
      ctx.method = restored.method;
      if (restored.dump) ctx.dump = restored.dump;
      ctx.frameCounter = { before: plan.from.counter, restored: plan.target };
      return `${ctx.method}: frame counter ${plan.from.counter} → ${plan.target} (${why})`;
    },
  };
}

function verifyRestoreStep(cx: ClusterContext, ctx: TakeoverContext): Step<TakeoverContext> {
  return {
    key: "verify-target-coordinator",
    name: `verify coordinator on ${ctx.to}`,
    timeoutMs: toolStepTimeout(cx, ctx.to),
    run: async ({ signal }) => {
      if (ctx.armed)
        return `read back when it was armed (${ctx.armed.at}), written by nothing since; zigbee2mqtt's start is checked against IEEE ${ctx.expected.ieee}, PAN ${ctx.expected.pan_id}, channel ${ctx.expected.channel}`;
      const text = await readNvram(cx, ctx.to, signal, ctx.notes);
      const dump = parseNvram(text, { requireNetwork: true });
      const network = checkIdentity(dump, ctx.expected, `${ctx.to}'s dongle after the restore`);
      const wanted = ctx.frameCounter?.restored ?? 0;
      if (network.frame_counter < wanted) {
        throw new StepFailure(
          `frame counter on ${ctx.to} is ${network.frame_counter}, expected at least ${wanted}`,
        );
      }
      return `IEEE ${network.ieee}, PAN ${network.pan_id}, channel ${network.channel}, frame counter ${network.frame_counter}`;
    },
  };
}
