/**
 * EmberZNet dongles in the lab (issue 15): a lab instance of its own whose nodes carry the
 * simulated EFR32 NCP, the real zigbee2mqtt with `adapter: ember`, and the sidecar's z2m-backup
 * driver with its node tool. node1 → node2 → node1 keeps PAN, extended PAN, EUI64 and channel,
 * the counter raised each time, one coordinator on the air; a failover after a cut link restores
 * the last backup; a target whose one-time EUI64 token holds another value is refused before
 * anything is touched; a rollback leaves the old active's dongle as it was.
 */

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { OperationRecord } from "../../sidecar/types.js";
import { AirSampler, highestCounter } from "../bench/reliability.js";
import { Z2M_BACKUP_SWITCHOVER_STEPS } from "./cluster-facts.js";
import { nodeIn, waitForReadyStandbys } from "./policy-helpers.js";
import { baseline, type SidecarHandle, startSidecar } from "./sidecar-harness.js";
import {
  type Identity,
  identityOf,
  runningNodes,
  runWhenFree,
  startWhenFree,
  stepsOf,
} from "./takeover-checks.js";
import { Lab } from "./world.js";

const LAB = "z2mhaember";
const SWITCHOVER_STEPS = Z2M_BACKUP_SWITCHOVER_STEPS;

let lab: Lab;
let h: SidecarHandle;
let network: Identity;

function sidecarNodes(): Record<string, unknown> {
  const nodes: Record<string, unknown> = {};
  for (const id of lab.info.nodeIds)
    nodes[id] = {
      ssh: { keepalive_interval: "2s", connect_timeout: "3s" },
      coordinator: { type: "z2m-backup", adapter: "ember", tools: ["node"] },
    };
  return nodes;
}

beforeAll(async () => {
  // A new instance every time: an EFR32's custom EUI64 token is written once, and these tests
  // start from blank tokens.
  await Lab.destroy(LAB);
  lab = await Lab.up({ name: LAB, nodes: 3, adapter: "ember" });
  await baseline(lab);
  for (const id of lab.info.nodeIds) await lab.simulator(id).resetMaxFrameCounter();
  network = identityOf(await lab.bridge());
  h = await startSidecar(lab, { failover: { automatic: false }, nodes: sidecarNodes() });
}, 300_000);

afterAll(async () => {
  await h?.stop();
  if (process.env.Z2MHA_LAB_KEEP !== "1") await Lab.destroy(LAB);
}, 120_000);

async function expectOnline(node: string): Promise<void> {
  expect((await h.api.status()).active).toBe(node);
  expect(await runningNodes(lab)).toEqual([node]);
  const bridge = await lab.waitForBridge(
    (b) => b.state === "online" && b.info?.config?.frontend?.host === lab.node(node).address,
    { timeout: 30_000, what: `bridge/info from ${node}` },
  );
  expect(identityOf(bridge)).toEqual(network);
}

describe("EmberZNet dongles with the z2m-backup driver", () => {
  it("the lab's ember nodes: zigbee2mqtt runs the ember adapter, node1's EUI64 is the network's", async () => {
    expect(lab.configuration("node1")).toMatch(/adapter: ember/);
    expect(network.ieee).toBe(`0x${lab.node("node1").ieee}`);
    expect((await lab.ember("node1").status()).network_up).toBe(true);
  });

  it("node1 → node2 → node1: the same PAN, extended PAN, EUI64 and channel, the counter raised each time, one coordinator on the air", async () => {
    for (const [from, to] of [
      ["node1", "node2"],
      ["node2", "node1"],
    ] as const) {
      const before = await highestCounter(lab);
      const air = new AirSampler(lab);
      air.start();
      let op: OperationRecord;
      try {
        op = await runWhenFree(h.api, "switchover", { target: to, reason: `lab: ember → ${to}` });
      } finally {
        air.stop();
      }
      expect(op.status, JSON.stringify({ error: op.error, steps: stepsOf(op) })).toBe("succeeded");
      expect(op.steps.filter((s) => !s.key.startsWith("stage:")).map((s) => s.key)).toEqual(SWITCHOVER_STEPS);
      expect(op.steps.find((s) => s.key === "wait-target-online")?.detail).toMatch(/started \(restored\)$/);
      await expectOnline(to);
      expect(air.samples).toBeGreaterThan(0);
      expect(air.violations).toEqual([]);
      // The network's EUI64: node2's blank token got node1's EUI64 on the way there, once.
      const prepare = op.steps.find((s) => s.key === "prepare-target-coordinator")?.detail ?? "";
      if (to === "node2")
        expect(prepare).toMatch(new RegExp(`custom EUI64 token written with ${network.ieee}`));
      else expect(prepare).not.toMatch(/token written/);
      expect((await lab.ember(to).status()).eui64).toBe(network.ieee.slice(2));
      // herdsman restored exactly the counter written into the backup: above everything used.
      const counter = op.result?.frame_counter as { before: number; restored: number };
      const now = await lab.ember(to).status();
      expect(now.host_set_nwk_frame_counter).toBe(counter.restored);
      expect(counter.restored).toBeGreaterThan(before);
      const old = await lab.ember(from).status();
      expect(old.network_up).toBe(false);
      expect(now.nwk_frame_counter).toBeGreaterThan(old.max_nwk_frame_counter);
    }
  });

  it("a failover after node1's link is cut: node2 restores the last backup above everything node1 used", async () => {
    expect((await runWhenFree(h.api, "sync")).status).toBe("succeeded");
    // Ready in the eyes of the automatic failover: the node's Node.js runs the ember tool (no
    // zigpy-znp on an EmberZNet node), the latest snapshot staged.
    const ready = await waitForReadyStandbys(h.api);
    for (const id of ["node2", "node3"]) expect(nodeIn(ready, id).tools_present).toBe(true);
    await lab.fault("cut-link", "node1");
    try {
      const op = await runWhenFree(h.api, "failover", { target: "node2", reason: "lab: ember node1 lost" });
      expect(op.status, JSON.stringify({ error: op.error, steps: stepsOf(op) })).toBe("succeeded");
      expect(op.result?.method).toMatch(/^coordinator_backup\.json of .* restored by zigbee2mqtt$/);
      await lab.waitForBridge(
        (b) => b.state === "online" && b.info?.config?.frontend?.host === lab.node("node2").address,
        { timeout: 60_000 },
      );
      expect(identityOf(await lab.bridge())).toEqual(network);
    } finally {
      await lab.fault("restore-link", "node1");
    }
    // node1 kept its network on the air while cut off; back in reach it is stopped and parked.
    await h.api.waitForStatus("node1's fence lifted", (s) => Object.keys(s.fenced).length === 0, 180_000);
    const node1 = await lab.ember("node1").status();
    expect(node1.network_up).toBe(false);
    expect((await lab.ember("node2").status()).nwk_frame_counter).toBeGreaterThan(
      node1.max_nwk_frame_counter,
    );
  });

  it("a target whose one-time EUI64 token holds another value: refused at preflight, nothing touched", async () => {
    await lab.ember("node3").writeCustomEui64("0011223344556677");
    const tokens = await lab.ember("node3").tokens();
    const op = await runWhenFree(h.api, "switchover", { target: "node3", reason: "lab: wrong EUI64 token" });
    expect(op.status).toBe("failed");
    expect(op.error?.message).toMatch(
      /node3 is not ready: its dongle cannot carry the network's EUI64 .*one-time custom EUI64 token already holds 0x0011223344556677/,
    );
    expect(op.steps.map((s) => s.key)).toEqual(["preflight"]);
    await expectOnline("node2");
    expect(await lab.ember("node3").tokens()).toEqual(tokens);
  });

  it("the target's disk full as the old active stops: rolled back, the old active's dongle as it was", async () => {
    const held = (await lab.ember("node2").tokens()).tokens;
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
    expect(op.error?.step).toMatch(
      /^(read the coordinator backup of node2 and park it|write the raised backup and data dir on node1)$/,
    );
    expect(op.steps.filter((s) => s.rollback).map((s) => s.key)).toEqual([
      "rollback-stop-target",
      "restart-source",
      "wait-source-online",
    ]);
    await expectOnline("node2");
    // node2 was parked and resumed: its network tokens as they were, its counter only higher.
    const after = (await lab.ember("node2").tokens()).tokens;
    expect(after.network).toEqual(held.network);
    expect(after.nwkFrameCounter).toBeGreaterThanOrEqual(held.nwkFrameCounter);
  });
});
