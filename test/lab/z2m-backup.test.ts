/**
 * The z2m-backup coordinator driver (docs/coordinators.md) in the lab, on the simulated Z-Stack
 * dongles with zigbee2mqtt's zstack adapter: the network moves as zigbee2mqtt's own
 * coordinator_backup.json, its counters raised by the controller, restored by zigbee2mqtt on a
 * wiped target. node1 → node2 → node1 keeps PAN, extended PAN, IEEE and channel with the counter
 * raised each time and one coordinator on the air; a failover after a cut link restores the last
 * backup; a target whose zigbee2mqtt cannot start is rolled back with the old active's dongle
 * as it was.
 */

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { OperationRecord } from "../../sidecar/types.js";
import { AirSampler, highestCounter } from "../bench/reliability.js";
import { Z2M_BACKUP_SWITCHOVER_STEPS } from "./cluster-facts.js";
import { type SidecarHandle, sharedLab, startSidecar } from "./sidecar-harness.js";
import {
  dongleAtRest,
  expectActive,
  freshNetwork,
  type Identity,
  identityOf,
  leaveNode1Active,
  type Nvram,
  nvramDifferences,
  runningNodes,
  runWhenFree,
  startWhenFree,
  stepsOf,
} from "./takeover-checks.js";
import type { Lab } from "./world.js";

let lab: Lab;
let h: SidecarHandle;
let network: Identity;

const SWITCHOVER_STEPS = Z2M_BACKUP_SWITCHOVER_STEPS;

beforeAll(async () => {
  lab = await sharedLab();
  network = await freshNetwork(lab);
  const ssh = { keepalive_interval: "2s", connect_timeout: "3s" };
  const nodes: Record<string, unknown> = {};
  for (const id of lab.info.nodeIds)
    nodes[id] = { ssh, coordinator: { type: "z2m-backup", adapter: "zstack" } };
  h = await startSidecar(lab, { failover: { automatic: false }, nodes });
});

afterAll(async () => {
  await h?.stop();
  await lab.fault("restore-link", "node1").catch(() => {});
  await leaveNode1Active(lab);
});

async function switchover(to: string): Promise<{ op: OperationRecord; air: AirSampler; before: number }> {
  const air = new AirSampler(lab);
  const before = await highestCounter(lab);
  air.start();
  try {
    const op = await runWhenFree(h.api, "switchover", { target: to, reason: `lab: z2m-backup → ${to}` });
    return { op, air, before };
  } finally {
    air.stop();
  }
}

describe("the z2m-backup driver on Z-Stack dongles", () => {
  it("node1 → node2 → node1: the same network from zigbee2mqtt's backup, counters raised each time, the old dongle parked", async () => {
    for (const [from, to] of [
      ["node1", "node2"],
      ["node2", "node1"],
    ] as const) {
      const { op, air, before } = await switchover(to);
      expect(op.status, JSON.stringify({ error: op.error, steps: stepsOf(op) })).toBe("succeeded");
      expect(op.steps.filter((s) => !s.key.startsWith("stage:")).map((s) => s.key)).toEqual(SWITCHOVER_STEPS);
      expect(op.steps.find((s) => s.key === "wait-target-online")?.detail).toMatch(
        /zigbee-herdsman started \(restored\)$/,
      );
      expect(op.result?.method).toMatch(
        /^coordinator_backup\.json of .* raised to \d+, restored by zigbee2mqtt$/,
      );
      await expectActive(h, to, network);
      expect(identityOf(await lab.bridge())).toEqual(network);
      // One coordinator on the air at every moment sampled; the old one parked, holding its network.
      expect(air.samples).toBeGreaterThan(0);
      expect(air.violations).toEqual([]);
      const old = await dongleAtRest(lab, from);
      expect(old).toMatchObject({ state: "hold", configured: true, pan_id: network.pan_id });
      // The counter only goes up: above everything any dongle used before, and above the old one's.
      const now = await lab.simulator(to).status();
      expect(now.nwk_frame_counter).toBeGreaterThan(before);
      expect(now.nwk_frame_counter).toBeGreaterThan(old.max_nwk_frame_counter);
      const counter = op.result?.frame_counter as { before: number; restored: number };
      expect(counter.restored).toBeGreaterThanOrEqual(counter.before + 2500);
      expect(now.nwk_frame_counter).toBeGreaterThanOrEqual(counter.restored);
      expect(await runningNodes(lab)).toEqual([to]);
    }
  });

  it("a failover after node1's link is cut: node2 restores the last backup, above node1's counter", async () => {
    expect((await runWhenFree(h.api, "sync")).status).toBe("succeeded");
    await lab.fault("cut-link", "node1");
    try {
      const op = await runWhenFree(h.api, "failover", { target: "node2", reason: "lab: node1 lost" });
      expect(op.status, JSON.stringify({ error: op.error, steps: stepsOf(op) })).toBe("succeeded");
      expect(op.result?.fence).toMatchObject({ how: "none", ok: false });
      expect(op.steps.find((s) => s.key === "wait-target-online")?.detail).toMatch(/started \(restored\)$/);
      await lab.waitForBridge(
        (b) => b.state === "online" && b.info?.config?.frontend?.host === lab.node("node2").address,
        { timeout: 60_000 },
      );
      expect(identityOf(await lab.bridge())).toEqual(network);
    } finally {
      await lab.fault("restore-link", "node1");
    }
    // node1, cut off, kept running its copy of the network; back in reach it is stopped and parked.
    await h.api.waitForStatus("node1's fence lifted", (s) => Object.keys(s.fenced).length === 0, 180_000);
    const node1 = await dongleAtRest(lab, "node1", 60_000);
    expect(node1.state).toBe("hold");
    expect((await lab.simulator("node2").status()).nwk_frame_counter).toBeGreaterThan(
      node1.max_nwk_frame_counter,
    );
  });

  it("the target's disk full as the old active stops: rolled back, the old active back on its untouched dongle", async () => {
    const held = (await lab.simulator("node2").nvram()) as Nvram;
    const events = h.api.events();
    await events.ready;
    let op: OperationRecord;
    try {
      const started = await startWhenFree(h.api, "switchover", { target: "node1", reason: "lab: full disk" });
      await events.step(started.id, (s) => s.name === "stop node2" && s.status === "running");
      await lab.fault("fill-disk", "node1", { disk: "home" });
      op = await h.api.finish(started);
    } finally {
      events.stop();
      await lab.fault("free-disk", "node1");
    }
    expect(op.status, JSON.stringify({ error: op.error, steps: stepsOf(op) })).toBe("rolled_back");
    // The disk fills while node2 stops: the final sync onto node1 or the raised backup's upload fails.
    expect(op.error?.step).toMatch(
      /^(read the coordinator backup of node2 and park it|write the raised backup and data dir on node1)$/,
    );
    // Never started there: nothing to retire, and node2's counter needs no raising.
    expect(op.steps.filter((s) => s.rollback).map((s) => s.key)).toEqual([
      "rollback-stop-target",
      "restart-source",
      "wait-source-online",
    ]);
    await expectActive(h, "node2", network);
    // node2's dongle was only parked and resumed: the network it held, counters aside.
    const after = (await lab.simulator("node2").nvram()) as Nvram;
    expect(nvramDifferences(held, after)).toEqual([]);
    expect(await runningNodes(lab)).toEqual(["node2"]);
  });
});
