/**
 * The z2m-backup driver: any adapter zigbee-herdsman backs up and restores (EmberZNet dongles:
 * Sonoff ZBDongle-E, Home Assistant Connect ZBT-1/ZBT-2, SLZB-06M; Z-Stack ones too). The network
 * moves as zigbee2mqtt's own coordinator_backup.json (Open Coordinator Backup): the old active's
 * zigbee2mqtt writes it on its clean stop, the controller raises every transmit counter in it,
 * stages it in the target's data dir, wipes the target's dongle, and zigbee2mqtt restores it when
 * it starts there. docs/coordinators.md says what a backup does not carry.
 *
 * Why the counters are raised here: herdsman's ember restore writes the backup's network frame
 * counter as it is (docs/simulator-ember.md), below what the old coordinator kept sending after
 * its zigbee2mqtt wrote the backup; devices would drop the new coordinator's frames.
 * Why the target is wiped: a dongle that still holds this network (an older copy) is resumed by
 * herdsman as it is, with its older, lower counter; only a blank dongle is restored.
 */
import {
  backupDate,
  type CoordinatorBackup,
  networkOfBackup,
  parseBackup,
} from "../../coordinator/backup.js";
import { checkCounter } from "../../coordinator/nvram.js";
import type { DataSnapshot } from "../../store/snapshots.js";
import { type ClusterContext, nodeOf, stagingOf } from "../context.js";
import { type ExpectedNetwork, toolStepTimeout, zigbee2mqttLogTail } from "../operations/common.js";
import { backupFact, counterPlan, issuedFacts, type RestoreSource } from "../operations/coordinator-state.js";
import { captureDataDir, refreshBackupStep, stageSnapshot } from "../operations/data-dir.js";
import type { TakeoverContext } from "../operations/takeover-context.js";
import { finalSync, installDataDir, recordIssue, sideBySide } from "../operations/takeover-parts.js";
import { type Step, StepFailure } from "../runner.js";
import { adapterToolsOf } from "./adapter-tools.js";
import type { CoordinatorDriver } from "./driver.js";

const BACKUP = "coordinator_backup.json";

/** Hex bytes in the other order ("a1b2…" → "…b2a1"). */
const reversed = (hex: string) => (hex.match(/../g) ?? []).reverse().join("");

/**
 * The network's coordinator IEEE as bridge/info shows it. herdsman's ember adapter writes
 * coordinator_ieee with its bytes reversed (the EUI64 is little-endian on the wire); the others
 * write it as shown.
 */
export function backupIeee(backup: CoordinatorBackup, adapter: "zstack" | "ember"): string {
  const raw = backup.coordinator_ieee.toLowerCase().padStart(16, "0");
  return `0x${adapter === "ember" ? reversed(raw) : raw}`;
}

/** The extended PAN ID as bridge/info shows it: herdsman's ember backup reverses it too. */
export function backupExtendedPanId(backup: CoordinatorBackup, adapter: "zstack" | "ember"): string {
  const raw = backup.extended_pan_id.toLowerCase().padStart(16, "0");
  return `0x${adapter === "ember" ? reversed(raw) : raw}`;
}

/**
 * The backup with the network key's frame counter at `target` and every device link key's
 * transmit counter raised by as much (what zigpy-znp's network_restore -c does).
 */
export function raiseBackupCounters(backup: CoordinatorBackup, target: number): CoordinatorBackup {
  checkCounter(target);
  const delta = Math.max(0, target - backup.network_key.frame_counter);
  return {
    ...backup,
    network_key: { ...backup.network_key, frame_counter: Math.max(target, backup.network_key.frame_counter) },
    devices: backup.devices.map((device) => {
      const linkKey = (device as { link_key?: { tx_counter?: unknown } }).link_key;
      if (!linkKey || typeof linkKey.tx_counter !== "number") return device;
      return {
        ...device,
        link_key: { ...linkKey, tx_counter: Math.min(linkKey.tx_counter + delta, 0xffff_ffff) },
      };
    }),
  };
}

/** The coordinator backup in a data snapshot, parsed; undefined when it has none. */
function backupIn(cx: ClusterContext, snapshot: DataSnapshot | undefined): CoordinatorBackup | undefined {
  const entry = snapshot?.files.find((f) => f.path === BACKUP);
  if (!entry) return undefined;
  return parseBackup(cx.snapshots.readObject(entry.sha256).toString("utf8"));
}

/** The network a backup restores, in bridge/info's notation (what waitOnline compares). */
function expectedOf(cx: ClusterContext, node: string, backup: CoordinatorBackup) {
  const adapter = nodeOf(cx, node).config.coordinator.adapter;
  const network = networkOfBackup(backup);
  return {
    ieee: backupIeee(backup, adapter),
    pan_id: network.pan_id,
    extended_pan_id: backupExtendedPanId(backup, adapter),
    channel: network.channel,
  } satisfies ExpectedNetwork;
}

/** The network's IEEE for `node`'s dongle: bridge/info's when known, else the backup's. */
function networkIeee(
  cx: ClusterContext,
  ctx: TakeoverContext,
  backup: CoordinatorBackup | undefined,
): string | undefined {
  return (
    ctx.expected.ieee ??
    (backup ? backupIeee(backup, nodeOf(cx, ctx.to).config.coordinator.adapter) : undefined)
  );
}

/**
 * Before the old active stops: the target's dongle made ready for zigbee2mqtt's restore. It must
 * carry the network's IEEE (an EFR32's custom EUI64 token, written once) and hold no copy of this
 * network (herdsman would resume that, counters and all): wiped, unless it is blank already.
 */
function prepareTargetStep(cx: ClusterContext, ctx: TakeoverContext): Step<TakeoverContext> {
  return {
    key: "prepare-target-coordinator",
    name: `prepare the coordinator on ${ctx.to}`,
    timeoutMs: toolStepTimeout(cx, ctx.to, 3),
    run: async ({ signal }) => {
      const tools = adapterToolsOf(cx, ctx.to);
      const details: string[] = [];
      // The old active may be running this very network: nothing started on the target to look.
      const held = await tools.info(cx, ctx.to, signal, ctx.notes, { network: tools.readsNetworkQuietly });
      const ieee = networkIeee(cx, ctx, backupIn(cx, cx.snapshots.latestData()));
      if (ieee && held.ieee !== ieee)
        details.push(await tools.carryIeee(cx, ctx.to, ieee, signal, ctx.notes));
      if (held.network || !held.networkRead) {
        ctx.touchedTo = true;
        await tools.wipe(cx, ctx.to, signal, ctx.notes);
        details.push(
          held.network
            ? `wiped (it held PAN ${held.network.pan_id}, ext PAN ${held.network.extended_pan_id}, frame counter ${held.network.frame_counter}): zigbee2mqtt restores onto a blank dongle`
            : "wiped without starting what it held: zigbee2mqtt restores onto a blank dongle",
        );
      } else details.push("blank: zigbee2mqtt restores onto it");
      return details.join("; ");
    },
  };
}

/** The source's own backup (written on its clean stop) beside parking its coordinator. */
function captureSourceStep(cx: ClusterContext, ctx: TakeoverContext): Step<TakeoverContext> {
  const from = ctx.from as string;
  return {
    key: "capture-source",
    name: `read the coordinator backup of ${from} and park it`,
    timeoutMs: Math.max(toolStepTimeout(cx, from), 300_000),
    run: ({ signal, op }) =>
      sideBySide([
        [
          "final sync",
          async () => {
            const detail = await finalSync(cx, ctx, signal, op.id);
            const backup = backupIn(cx, ctx.dataSnapshot);
            if (!backup)
              throw new StepFailure(`${from}'s data dir holds no ${BACKUP} after its zigbee2mqtt stopped`);
            const written = backupDate(backup)?.getTime();
            if (ctx.stopSentAt && !(written !== undefined && written >= ctx.stopSentAt - 1000)) {
              // Its clean stop should have written one; the one before the stop still bounds the
              // counter (its age × failover.frame_counter_rate is added), so it is used, and said.
              ctx.notes.push(
                `zigbee2mqtt on ${from} wrote no ${BACKUP} on its stop: the one from ${written ? new Date(written).toISOString() : "an unknown time"} is restored, its counter raised for its age`,
              );
              return `${detail}; no backup written on the stop, the older one is used`;
            }
            return `${detail}; ${BACKUP} written on the stop`;
          },
        ],
        [`park ${from}`, () => adapterToolsOf(cx, from).park(cx, from, signal, ctx.notes)],
      ]),
  };
}

/**
 * The target's data dir: the snapshot staged with its coordinator backup's counters raised above
 * everything the network can have used (coordinator/frame-counter.ts), then installed.
 */
function writeTargetStep(cx: ClusterContext, ctx: TakeoverContext): Step<TakeoverContext> {
  return {
    key: "write-target-data",
    name: `write the raised backup and data dir on ${ctx.to}`,
    timeoutMs: 300_000,
    run: async ({ op }) => {
      const snapshot = ctx.dataSnapshot ?? (await stagedOrLatest(cx, ctx.to));
      const backup = backupIn(cx, snapshot);
      if (!snapshot || !backup)
        throw new StepFailure(
          `no ${BACKUP} to restore from: the controller holds no copy of it yet (run a sync)`,
        );
      const source: RestoreSource = {
        key: "",
        label: `${BACKUP} (${snapshot.id})`,
        identity: expectedOf(cx, ctx.to, backup),
        facts: [
          ...issuedFacts(cx, expectedOf(cx, ctx.to, backup).extended_pan_id),
          backupFact(backup, snapshot),
        ],
      };
      const plan = counterPlan(cx, source, Date.now());
      const raised = raiseBackupCounters(backup, plan.target);
      ctx.expected = expectedOf(cx, ctx.to, backup);
      ctx.dataSnapshot = snapshot;
      ctx.touchedTo = true;
      await stageSnapshot(
        cx,
        ctx.to,
        snapshot,
        op.id,
        new Map([[BACKUP, Buffer.from(JSON.stringify(raised, null, 2))]]),
      );
      const installed = await installDataDir(cx, ctx);
      ctx.frameCounter = { before: backup.network_key.frame_counter, restored: plan.target };
      ctx.method = `${BACKUP} of ${snapshot.id} with its counters raised to ${plan.target}, restored by zigbee2mqtt`;
      const why = `${plan.from.source} at ${plan.from.counter}${plan.allowance ? ` + ${plan.allowance} for its age` : ""} + ${cx.config.failover.frame_counter_increment}`;
      return `${installed}; frame counter ${backup.network_key.frame_counter} → ${plan.target} (${why})`;
    },
  };
}

async function stagedOrLatest(cx: ClusterContext, node: string): Promise<DataSnapshot | undefined> {
  const staged = await stagingOf(cx, node).read();
  return (staged?.snapshot_id && cx.snapshots.getData(staged.snapshot_id)) || cx.snapshots.latestData();
}

/**
 * After the target is online: zigbee2mqtt must have restored the backup, not resumed a network
 * the dongle still held (with its own, lower counters) nor formed a new one. Its log says which.
 */
async function confirmRestore(cx: ClusterContext, ctx: TakeoverContext): Promise<string> {
  const log = await zigbee2mqttLogTail(cx, ctx.to, 400);
  const started = [...log.matchAll(/zigbee-herdsman started \((\w+)\)/g)].at(-1)?.[1];
  if (!started)
    return "zigbee2mqtt's log is not in its data dir (log_output without file): bridge/info's IEEE and network were checked";
  if (started !== "restored")
    throw new StepFailure(
      `zigbee2mqtt on ${ctx.to} started its coordinator "${started}", not "restored": its dongle did not take the raised backup`,
      log,
    );
  return "zigbee-herdsman started (restored)";
}

export const z2mBackup: CoordinatorDriver = {
  type: "z2m-backup",
  async preflight(cx, node) {
    const tools = adapterToolsOf(cx, node);
    const problems = await tools.present(cx, node);
    if (problems.length > 0) return problems;
    if ((await nodeOf(cx, node).serviceState()) !== "stopped") return problems;
    if (!(await nodeOf(cx, node).portReachable()))
      return [`coordinator port ${nodeOf(cx, node).config.coordinator.port} does not answer`];
    const backup = backupIn(cx, cx.snapshots.latestData());
    const ieee =
      cx.watcher.status().coordinator_ieee ?? (backup ? backupIeee(backup, tools.adapter) : undefined);
    if (ieee && tools.adapter === "ember") {
      const held = await tools.info(cx, node, AbortSignal.timeout(toolStepTimeout(cx, node)), [], {
        network: false,
      });
      if (held.customIeee && held.customIeee !== ieee)
        problems.push(
          `its dongle cannot carry the network's EUI64 ${ieee}: its one-time custom EUI64 token already holds ${held.customIeee} (use another dongle, or one whose token is blank)`,
        );
    }
    return problems;
  },
  switchoverSteps: (cx, ctx) => ({
    // A fresh backup before the stop too: should zigbee2mqtt write none as it stops, the newest
    // one is seconds old rather than up to a sync interval.
    prepare: [
      refreshBackupStep(cx, { backup: "" }, true) as Step<TakeoverContext>,
      prepareTargetStep(cx, ctx),
    ],
    outage: [captureSourceStep(cx, ctx), writeTargetStep(cx, ctx)],
  }),
  failoverSteps: (cx, ctx) => [prepareTargetStep(cx, ctx), writeTargetStep(cx, ctx)],
  confirmStarted: (cx, ctx) => confirmRestore(cx, ctx),
  async captureAndPark(cx, ctx, node, signal) {
    const details: string[] = [];
    try {
      const captured = await captureDataDir(cx, node, signal);
      ctx.dataSnapshot = cx.snapshots.saveData({
        created_at: new Date().toISOString(),
        node,
        operation_id: "fence",
        files: captured.files,
        notes: ["captured when it was fenced, zigbee2mqtt stopped", ...captured.notes],
      });
      details.push(`its data dir (with the ${BACKUP} of its clean stop) was read as ${ctx.dataSnapshot.id}`);
    } catch (error) {
      ctx.notes.push(`could not read the data dir of ${node}: ${(error as Error).message}`);
      details.push(`its data dir could not be read (${(error as Error).message.slice(0, 200)})`);
    }
    try {
      details.push(
        `its coordinator parked (${await adapterToolsOf(cx, node).park(cx, node, signal, ctx.notes)})`,
      );
    } catch (error) {
      ctx.notes.push(`could not park the coordinator on ${node}: ${(error as Error).message}`);
      details.push(`its coordinator could not be parked (${(error as Error).message.slice(0, 200)})`);
    }
    return `; ${details.join("; ")}`;
  },
  park: (cx, node, signal, notes) => adapterToolsOf(cx, node).park(cx, node, signal, notes),
  async retire(cx, node, signal, notes) {
    const tools = adapterToolsOf(cx, node);
    let reached: number | undefined;
    try {
      reached = (await tools.info(cx, node, signal, notes)).network?.frame_counter;
    } catch (error) {
      notes.push(`could not read the frame counter on ${node}: ${(error as Error).message}`);
    }
    await tools.wipe(cx, node, signal, notes);
    return reached;
  },
  async raiseCounter(cx, node, above, signal, notes) {
    // No adapter lets the controller write a counter alone: the node's own backup goes back into
    // its data dir with its counters raised, its dongle is wiped, and zigbee2mqtt restores it.
    const increment = cx.config.failover.frame_counter_increment;
    const snapshot = cx.snapshots.latestDataOf(node) ?? cx.snapshots.latestData();
    const backup = backupIn(cx, snapshot);
    if (!snapshot || !backup) throw new StepFailure(`no ${BACKUP} of ${node} to raise its counter with`);
    const target = (above ?? backup.network_key.frame_counter + increment) + increment;
    const raised = raiseBackupCounters(backup, target);
    await nodeOf(cx, node).ssh.writeFileAtomic(
      `${nodeOf(cx, node).config.data_dir}/${BACKUP}`,
      JSON.stringify(raised, null, 2),
      { mode: 0o644 },
    );
    await adapterToolsOf(cx, node).wipe(cx, node, signal, notes);
    recordIssue(cx, node, target, expectedOf(cx, node, backup).extended_pan_id);
    return `its dongle wiped and its ${BACKUP} raised to frame counter ${target}: zigbee2mqtt restores it at its start`;
  },
  async arm() {
    return "not armed: with z2m-backup zigbee2mqtt restores at its start (the failover wipes the dongle)";
  },
};
