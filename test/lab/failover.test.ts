/**
 * Unplanned failover and the split-brain guard in the lab: the active node's cable is pulled, the
 * network comes up on a standby from what the controller holds, with a frame counter above any the
 * lost node used; when the lost node comes back it is fenced. A zigbee2mqtt started by hand on a
 * standby is stopped, and the active's bridge state restored.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NodeDetail, OperationRecord } from "../../sidecar/types.js";
import { opsSince, waitForDecision } from "./policy-helpers.js";
import type { EventRecorder } from "./sidecar-api.js";
import { type SidecarHandle, sharedLab, startSidecar } from "./sidecar-harness.js";
import {
  dongleAtRest,
  expectActive,
  freshNetwork,
  type Identity,
  identityOf,
  leaveNode1Active,
  nvWriteCount,
  runningNodes,
  runWhenFree,
} from "./takeover-checks.js";
import type { HostId, Lab } from "./world.js";

let lab: Lab;
let h: SidecarHandle;
let events: EventRecorder;
let network: Identity;

beforeAll(async () => {
  lab = await sharedLab();
  network = await freshNetwork(lab);
  h = await startSidecar(lab, { failover: { automatic: false, arm_standby: true } });
  events = h.api.events();
  await events.ready;
  // The controller's freshest coordinator state: a sync with a coordinator backup just taken.
  const sync = await runWhenFree(h.api, "sync");
  expect(sync.status).toBe("succeeded");
  // The start-up sync took a fresh coordinator backup; this one found it fresh enough, or took one.
  const backups = (await h.api.operations("sync")).map(
    (op) => op.steps.find((s) => s.name === "refresh coordinator backup")?.detail ?? "",
  );
  expect(
    backups.some((detail) => /refreshed coordinator_backup/.test(detail)),
    backups.join("; "),
  ).toBe(true);
});

afterAll(async () => {
  events?.stop();
  await h?.stop();
  await lab.fault("restore-link", "node1").catch(() => {});
  await leaveNode1Active(lab);
});

/** The guard's fence operations on `node` that have finished. */
async function finishedFences(node: string): Promise<OperationRecord[]> {
  return (await h.api.operations("fence")).filter((o) => o.params.node === node && o.status !== "running");
}

describe("unplanned failover", () => {
  it("node1's link cut: node2, armed by the sync, takes the network above node1's counter with nothing written in the outage; node1 is fenced when it comes back, then staged again at once", async () => {
    // The sync armed node2: its dongle holds the network, parked, its counter ahead of node1's.
    const armed = (await h.api.call<NodeDetail>("GET", "/api/v1/nodes/node2")).armed;
    expect(armed?.source).toMatch(/^backup:/);
    const held = await dongleAtRest(lab, "node2");
    expect(held).toMatchObject({ state: "hold", configured: true, pan_id: network.pan_id });
    expect(held.nwk_frame_counter).toBe(armed?.counter);
    expect(held.nwk_frame_counter).toBeGreaterThan((await lab.simulator("node1").status()).nwk_frame_counter);
    // A sync that finds nothing new leaves an armed dongle alone.
    const writesBefore = await nvWriteCount(lab, "node2");
    const again = await runWhenFree(h.api, "sync");
    expect(again.steps.find((s) => s.key === "arm:node2")?.detail).toMatch(/^armed already with/);
    expect(await nvWriteCount(lab, "node2")).toBe(writesBefore);

    await lab.fault("cut-link", "node1");
    try {
      const op = await runWhenFree(h.api, "failover", {
        target: "node2",
        reason: "lab: node1 lost its cable",
      });
      expect(op.status, JSON.stringify(op.error)).toBe("succeeded");
      expect(op.params).toMatchObject({ from: "node1", to: "node2" });
      // node1 could not be reached: nothing stopped it; it is marked fenced and an alert says so.
      expect(op.result?.fence).toMatchObject({ how: "none", ok: false });
      expect(op.result?.method).toMatch(/^armed at .* with coordinator_backup\.json .*: nothing written$/);
      expect(op.steps.find((s) => s.key === "verify-target-coordinator")?.detail).toMatch(
        /^read back when it was armed/,
      );
      // Nothing was written onto node2's dongle in the outage, and it is no longer armed (it runs).
      expect(await nvWriteCount(lab, "node2")).toBe(writesBefore);
      expect((await h.api.call<NodeDetail>("GET", "/api/v1/nodes/node2")).armed).toBeNull();
      const status = await h.api.status();
      expect(status.active).toBe("node2");
      expect(Object.keys(status.fenced)).toEqual(["node1"]);
      expect(status.alerts).toContainEqual(expect.objectContaining({ kind: "fence_failed", node: "node1" }));
      // The network runs on node2 (node1, cut off, still runs zigbee2mqtt: nobody can reach it).
      const bridge = await lab.waitForBridge(
        (b) => b.state === "online" && b.info?.config?.frontend?.host === lab.node("node2").address,
        // node1's last will reaches the broker when its keepalive runs out, possibly after node2
        // announced itself; the policy then publishes node2's "online" again.
        { timeout: 60_000 },
      );
      expect(identityOf(bridge)).toEqual(network);
      expect((await lab.simulator("node2").status()).nwk_frame_counter).toBeGreaterThanOrEqual(
        (op.result as { frame_counter: { restored: number } }).frame_counter.restored,
      );
    } finally {
      await lab.fault("restore-link", "node1");
    }

    // node1 is back on the network, its zigbee2mqtt still running: the guard stops it.
    const fence = await h.api.waitFor(
      "the guard to fence node1",
      async () => (await finishedFences("node1"))[0],
      120_000,
    );
    expect(fence).toMatchObject({ trigger: "guard", status: "succeeded" });
    await events.seen("alert.raised", (d) => {
      const alert = d.alert as { kind: string; node?: string };
      return alert.kind === "split_brain" && alert.node === "node1";
    });
    await h.api.waitForStatus("node1's fence lifted", (s) => Object.keys(s.fenced).length === 0);
    await expectActive(h, "node2", network);
    // node1 missed the syncs while cut off. Back, it is staged at once (this sidecar's
    // sync.interval is 1 h): a ready standby again, the cluster protected.
    await h.api.waitForStatus(
      "node1 a ready standby again",
      (s) => s.nodes.find((n) => n.id === "node1")?.health === "standby-ready",
      90_000,
    );
    const resync = (await h.api.operations("sync")).find((o) => /^node1 is back/.test(o.reason ?? ""));
    expect(resync, "a sync because node1 came back").toBeDefined();
    const finished = await h.api.finish(resync as OperationRecord);
    expect(finished, JSON.stringify(finished)).toMatchObject({ trigger: "schedule", status: "succeeded" });

    // node1's coordinator is off the air, and node2 counts above anything node1 ever sent.
    const node1 = await dongleAtRest(lab, "node1");
    expect(node1.state).toBe("hold");
    expect((await lab.simulator("node2").status()).nwk_frame_counter).toBeGreaterThan(
      node1.max_nwk_frame_counter,
    );
  });
});

describe("split-brain guard", () => {
  it("zigbee2mqtt started by hand on a standby is stopped, with an alert, and the active's bridge state comes back", async () => {
    const before = (await finishedFences("node3")).length;
    // Maintenance mode: the guard only raises the alert, so node3 gets to publish its bridge state.
    await h.api.call("PUT", "/api/v1/automation", { maintenance: true });
    await lab.service("node3", "start");
    await lab.waitForZigbee2mqtt("node3");
    await events.seen("alert.raised", (d) => {
      const alert = d.alert as { kind: string; node?: string; message: string };
      return alert.kind === "split_brain" && alert.node === "node3" && /maintenance/.test(alert.message);
    });
    expect(await runningNodes(lab)).toEqual(["node2", "node3"]);

    await h.api.call("PUT", "/api/v1/automation", { maintenance: false });
    const fence = await h.api.waitFor("the guard to stop node3", async () => {
      const fences = await finishedFences("node3");
      return fences.length > before ? fences[0] : undefined;
    });
    expect(fence).toMatchObject({ trigger: "guard", status: "succeeded" });
    expect(fence.steps.find((s) => s.name === "restore the active's bridge state")?.detail).toMatch(
      /online on node2/,
    );
    await expectActive(h, "node2", network);
    expect((await dongleAtRest(lab, "node3")).state).toBe("hold");
    expect((await h.api.status()).alerts.filter((a) => a.kind === "split_brain")).toEqual([]);
  });
});

describe("a stale last will", () => {
  it("bridge/state offline while the active's zigbee2mqtt runs and answers: online again, without a restart", async () => {
    const active = (await h.api.status()).active as string;
    await lab.waitForZigbee2mqtt(active);
    const pid = (await lab.execOk(active as HostId, ["cat", "/run/zigbee2mqtt.pid"])).stdout.trim();
    const mark = Date.now();
    // What the broker does with the will of a zigbee2mqtt that vanished from the network.
    const client = await lab.mqtt();
    try {
      await client.publishAsync("zigbee2mqtt/bridge/state", JSON.stringify({ state: "offline" }), {
        qos: 1,
        retain: true,
      });
    } finally {
      await client.endAsync();
    }
    const decision = await waitForDecision(h.api, mark, "bridge state restored", () => true, 60_000);
    expect(decision.params.node).toBe(active);
    expect(decision.result?.detail).toMatch(
      new RegExp(`while zigbee2mqtt runs on ${active} and answers a health check`),
    );
    const bridge = await lab.waitForBridge(
      (b) => b.state === "online" && b.info?.config?.frontend?.host === lab.node(active as HostId).address,
      { timeout: 10_000 },
    );
    expect(identityOf(bridge)).toEqual(network);
    // The same zigbee2mqtt process: nothing was restarted or stopped for it.
    expect((await lab.execOk(active as HostId, ["cat", "/run/zigbee2mqtt.pid"])).stdout.trim()).toBe(pid);
    expect(
      (await opsSince(h.api, mark)).filter((o) => ["restart", "fence", "failover"].includes(o.kind)),
    ).toEqual([]);
    await h.api.waitForStatus(
      "the active healthy again",
      (s) => s.nodes.find((n) => n.id === active)?.health === "active-healthy",
    );
  });
});
