/**
 * The zstack-nvram driver: TI Z-Stack coordinators (CC2652, CC1352: Sonoff ZBDongle-P, SLZB-06)
 * moved by copying their whole NVRAM with zigpy-znp's tools over SSH (nvram_read, nvram_write,
 * nvram_reset, network_restore). The switchover pipeline (docs/failover.md): B's dongle prepared
 * before A stops, in the outage A read beside the final sync, only the changed items written on B
 * beside A's parking, B verified beside its data dir install.
 */
import { networkOfBackup, parseBackup, toZigpyBackup } from "../../coordinator/backup.js";
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
import { type ClusterContext, nodeOf } from "../context.js";
import { type ExpectedNetwork, readNvram, toolStepTimeout, withTool } from "../operations/common.js";
import {
  armedWith,
  armHorizon,
  backupContentKey,
  backupFact,
  counterPlan,
  issuedFacts,
  type RestoreIdentity,
  type RestoreSource,
  recordArmed,
  restoreSourceOf,
  snapshotFact,
} from "../operations/coordinator-state.js";
import type { TakeoverContext } from "../operations/takeover-context.js";
import {
  finalSync,
  installDataDir,
  installStep,
  recordIssue,
  sideBySide,
} from "../operations/takeover-parts.js";
import { type Step, StepFailure } from "../runner.js";
import type { CoordinatorDriver } from "./driver.js";

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
    run: async ({ signal, op }) => {
      const detail = await sideBySide([
        ["NVRAM", () => readSource(cx, ctx, signal, op.id)],
        ["final sync", () => finalSync(cx, ctx, signal, op.id)],
      ]);
      linkBackupToNvram(cx, ctx);
      return detail;
    },
  };
}

/**
 * zigbee2mqtt wrote its coordinator_backup.json on the same clean stop the NVRAM was read after:
 * the NVRAM copy holds all the backup does (and more). Recorded by the backup's content key, so
 * that arming and failover can write the exact NVRAM copy for any later backup of that content.
 */
function linkBackupToNvram(cx: ClusterContext, ctx: TakeoverContext): void {
  const entry = ctx.dataSnapshot?.files.find((f) => f.path === "coordinator_backup.json");
  if (!entry || !ctx.nvramSnapshotId) return;
  let key: string;
  try {
    key = backupContentKey(parseBackup(cx.snapshots.readObject(entry.sha256).toString("utf8")));
  } catch {
    return;
  }
  cx.state.update((s) => {
    const last = s.last_nvram_snapshot;
    if (last && last.id === ctx.nvramSnapshotId) last.backup_key = key;
  });
}

/** Parks A's coordinator with the items its read just gave (no second read in the outage). */
async function parkSource(cx: ClusterContext, ctx: TakeoverContext, signal: AbortSignal): Promise<string> {
  const detail = await parkNode(cx, ctx.from as string, signal, ctx.notes, ctx.dump?.LEGACY ?? {});
  return `${detail}, its NVRAM as read`;
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
 * Parks a node's coordinator: a soft reset after which it holds its NVRAM but runs no network.
 * Its inert items are read first unless `legacy` (what a read just gave) is there already.
 */
export async function parkNode(
  cx: ClusterContext,
  node: string,
  signal: AbortSignal,
  notes?: string[],
  legacy?: Record<string, string>,
): Promise<string> {
  const items = legacy ?? parseNvram(await readNvram(cx, node, signal, notes)).LEGACY ?? {};
  // The step's abort also ends the remote tool.
  const item = await withTool(
    cx,
    node,
    "park the coordinator",
    signal,
    (n, s) => n.parkCoordinator(items, s),
    notes,
  );
  return `soft reset (nvram_write of ${item} unchanged): its coordinator holds`;
}

export const zstackNvram: CoordinatorDriver = {
  type: "zstack-nvram",
  async preflight(cx, node) {
    const zigbeeNode = nodeOf(cx, node);
    const problems: string[] = [];
    const tools = await zigbeeNode.toolsPresent();
    if (!tools.ok) problems.push(`${tools.what}: ${tools.detail}`);
    if (!(await zigbeeNode.portReachable()))
      problems.push(`coordinator port ${zigbeeNode.config.coordinator.port} is missing`);
    return problems;
  },
  switchoverSteps: (cx, ctx) => ({
    prepare: [prepareTargetStep(cx, ctx)],
    outage: [readSourceStep(cx, ctx), writeTargetStep(cx, ctx), verifyTargetStep(cx, ctx)],
  }),
  failoverSteps: (cx, ctx) => [
    restoreCoordinatorStep(cx, ctx),
    verifyRestoreStep(cx, ctx),
    installStep(cx, ctx),
  ],
  captureAndPark: readAndPark,
  park: (cx, node, signal, notes) => parkNode(cx, node, signal, notes),
  retire: retireCopy,
  raiseCounter,
  arm: armStandby,
};
