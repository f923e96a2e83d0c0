/**
 * Planned switchovers in the lab, with the real sidecar on the controller, the real zigbee2mqtt on
 * the nodes and the real zigpy-znp tools on simulated dongles: the network moves with its
 * identity and a higher frame counter; a fault at any step before the point of no return ends with
 * the old active online again, and never with two coordinators.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { OperationRecord } from "../../sidecar/types.js";
import { type SidecarHandle, sharedLab, startSidecar } from "./sidecar-harness.js";
import {
  dongleAtRest,
  expectActive,
  freshNetwork,
  type Identity,
  leaveNode1Active,
  type Nvram,
  networkKeyOf,
  nvramDifferences,
  runningNodes,
  runWhenFree,
  startWhenFree,
  stepsOf,
  storedNvramDump,
} from "./takeover-checks.js";
import type { Lab } from "./world.js";

const INCREMENT = 2500;

/**
 * The sidecar's config for these tests: node3 with `node3Overrides` in its configuration.yaml.
 * SSH keepalives every 2 s and connection attempts of 3 s (defaults 5 s and 10 s), so a cut cable
 * is noticed in ~6 s and given up on in ~10 s: the outcome is the same, the tests are quicker.
 */
function sidecarConfig(node3Overrides: Record<string, string | number>): Record<string, unknown> {
  const ssh = { keepalive_interval: "2s", connect_timeout: "3s" };
  const nodes: Record<string, unknown> = {};
  for (const id of lab.info.nodeIds) nodes[id] = { ssh };
  nodes.node3 = { ssh, overrides: node3Overrides };
  return { failover: { automatic: false, frame_counter_increment: INCREMENT, arm_standby: true }, nodes };
}

let lab: Lab;
let h: SidecarHandle;
/** The network node1 formed at baseline, as its bridge/info announced it. */
let network: Identity;
let networkKey: string;

beforeAll(async () => {
  lab = await sharedLab();
  network = await freshNetwork(lab);
  networkKey = lab.info.network.networkKey.map((b) => b.toString(16).padStart(2, "0")).join("");
  // node3's zigbee2mqtt gets a broker address nobody listens on: it starts the coordinator, then
  // exits ("MQTT failed to connect"), the way a broken configuration fails after the network is up.
  h = await startSidecar(lab, sidecarConfig({ "mqtt.server": `mqtt://${lab.info.controller.address}:1884` }));
  expect((await runWhenFree(h.api, "sync")).status).toBe("succeeded");
});

afterAll(async () => {
  await h?.stop();
  await leaveNode1Active(lab);
});

/**
 * One planned switchover, checked the way a user would: the new node runs the same network, the
 * old one is stopped and its coordinator parked, the new dongle holds exactly the dump (counters
 * aside) with a counter above anything the old one used.
 */
async function switchoverChecked(from: string, to: string): Promise<OperationRecord> {
  const op = await runWhenFree(h.api, "switchover", { target: to, reason: `lab: ${from} → ${to}` });
  expect(op.status, JSON.stringify(op.error)).toBe("succeeded");
  expect(op.params).toMatchObject({ from, to });
  expect(op.steps.every((s) => s.status === "succeeded")).toBe(true);
  await expectActive(h, to, network);

  const oldDongle = await dongleAtRest(lab, from);
  const newDongle = await lab.simulator(to).status();
  // The old coordinator no longer runs the network: parked (HOLD) with its NVRAM kept.
  expect(oldDongle).toMatchObject({ state: "hold", configured: true });
  expect(newDongle).toMatchObject({ state: "started", configured: true, ieee: oldDongle.ieee });
  // The new coordinator counts on from above everything the old one ever sent.
  expect(newDongle.nwk_frame_counter).toBeGreaterThan(oldDongle.max_nwk_frame_counter);

  const dump = storedNvramDump(h, op.result?.nvram_snapshot as string);
  const oldNvram = (await lab.simulator(from).nvram()) as Nvram;
  const newNvram = (await lab.simulator(to).nvram()) as Nvram;
  // The dump is what the old dongle holds, and the new dongle holds every item of it.
  expect(nvramDifferences(dump, oldNvram)).toEqual([]);
  expect(nvramDifferences(dump, newNvram)).toEqual([]);
  expect(networkKeyOf(newNvram)).toBe(networkKey);
  expect(networkKeyOf(dump)).toBe(networkKey);
  const counter = op.result?.frame_counter as { before: number; restored: number };
  // At least the increment above the old one's last counter: more when the counter B got before
  // the stop (each known counter + the assumed rate × its age) was higher.
  expect(counter.restored).toBeGreaterThanOrEqual(counter.before + INCREMENT);
  expect(newDongle.nwk_frame_counter).toBeGreaterThanOrEqual(counter.restored);

  // Every other node, the old active included, has a staged copy of the new active's data.
  const status = await h.api.status();
  expect(status.last_switchover).toMatchObject({ from, to, operation_id: op.id });
  for (const other of lab.info.nodeIds.filter((n) => n !== to)) {
    expect(op.steps.find((s) => s.name === `stage on ${other}`)?.status).toBe("succeeded");
    const node = status.nodes.find((n) => n.id === other);
    expect(node?.staging_age_s, other).not.toBeNull();
    expect(node?.reason, other).not.toMatch(/nothing staged/);
  }
  return op;
}

describe("planned switchover", () => {
  it("node1 → node2 → node1: same network, same coordinator IEEE, NVRAM copied exactly, old active stopped and parked", async () => {
    // One failed nvram_write on node2 on the way: the step retries it and says so.
    await lab.fault("tool-fault", "node2", { tool: "nvram_write", mode: "fail", times: 1 });
    const there = await switchoverChecked("node1", "node2");
    expect(there.result?.notes).toEqual([expect.stringMatching(/^nvram_write on node2: attempt 1 failed/)]);
    // node2 was armed by the first sync from zigbee2mqtt's coordinator backup (zigpy-znp's
    // network_restore, which also leaves its own migration record): the outage writes only what
    // changed since, no reset and full write.
    expect(there.steps.find((s) => s.key === "prepare-target-nvram")?.detail).toMatch(
      /holds this network already/,
    );
    expect(there.steps.find((s) => s.key === "write-target-nvram")?.detail).toMatch(
      /^\d+ changed items written/,
    );
    expect((await lab.status()).faults).toEqual([]);

    const back = await switchoverChecked("node2", "node1");
    expect(back.result?.notes).toBeUndefined();
    expect(stepsOf(back)).toEqual(
      stepsOf(there).map((s) => s.replace(/node1|node2/g, (n) => (n === "node1" ? "node2" : "node1"))),
    );
    expect(await runningNodes(lab)).toEqual(["node1"]);
  });
});

/**
 * Starts a switchover to `to`; when the step `at` starts running, `inject` breaks something.
 * Returns the operation's final record.
 */
async function switchoverWithFault(
  to: string,
  at: string | undefined,
  inject: () => Promise<void>,
): Promise<OperationRecord> {
  const events = h.api.events();
  await events.ready;
  try {
    const started = await startWhenFree(h.api, "switchover", { target: to, reason: "lab: fault injection" });
    if (at) {
      await events.step(started.id, (s) => s.name === at && s.status === "running");
    }
    await inject();
    return await h.api.finish(started);
  } finally {
    events.stop();
  }
}

/**
 * A switchover that failed before the point of no return: rolled back, the failed step named, the
 * old active online with the same network and the only node running zigbee2mqtt, the target's
 * dongle not running the network, and the network's frame counter above anything the target's
 * dongle ever sent.
 */
async function expectRolledBack(
  op: OperationRecord,
  from: string,
  to: string,
  failedStep: string | RegExp,
): Promise<void> {
  expect(op.status, JSON.stringify({ error: op.error, steps: stepsOf(op) })).toBe("rolled_back");
  expect(op.error?.step).toMatch(failedStep);
  expect(op.result).toMatchObject({ from, to, committed: false });
  const rollback = op.steps.filter((s) => s.rollback);
  // Failed before it was stopped: the old active kept running, there was nothing to restart.
  if (op.steps.some((s) => s.key === "stop-source"))
    expect(rollback.map((s) => s.name)).toContain(`wait for ${from} online`);
  expect(rollback.every((s) => s.status === "succeeded")).toBe(true);
  await expectActive(h, from, network);
  const target = await dongleAtRest(lab, to);
  expect(target.state).toBe("hold");
  expect((await lab.simulator(from).status()).nwk_frame_counter).toBeGreaterThan(
    target.max_nwk_frame_counter,
  );
}

describe("a fault during a switchover", () => {
  it("a corrupt NVRAM dump from the old active: rolled back before anything was written", async () => {
    const before = await lab.simulator("node2").nvram();
    await lab.fault("tool-fault", "node1", { tool: "nvram_read", mode: "corrupt", times: 1 });
    try {
      const op = await switchoverWithFault("node2", undefined, async () => {});
      await expectRolledBack(op, "node1", "node2", "read NVRAM on node1");
      expect(op.error?.message).toMatch(/NVRAM dump read from node1 is not usable/);
      expect(op.steps.some((s) => s.name.startsWith("write NVRAM") || s.name.startsWith("reset NVRAM"))).toBe(
        false,
      );
      // Before node1 stopped, node2's dongle may only have been given the controller's own copy.
      const prepared = op.steps.find((s) => s.key === "prepare-target-nvram")?.detail ?? "";
      if (!/written and read back/.test(prepared))
        expect(await lab.simulator("node2").nvram()).toEqual(before);
    } finally {
      await lab.fault("tool-fault", "node1", { clear: true });
    }
  });

  it("nvram_write failing on the target every time: three attempts, then rolled back", async () => {
    await lab.fault("tool-fault", "node2", { tool: "nvram_write", mode: "fail" });
    try {
      const op = await switchoverWithFault("node2", undefined, async () => {});
      // Failing while node2 is prepared (node1 still running) or in the outage: never more.
      await expectRolledBack(op, "node1", "node2", /^(prepare|write) NVRAM on node2/);
      expect(op.error?.output).toMatch(/lab tool-fault: nvram_write fails on purpose/);
      expect(op.result?.notes).toEqual([
        expect.stringMatching(/^nvram_write on node2: attempt 1 failed/),
        expect.stringMatching(/^nvram_write on node2: attempt 2 failed/),
      ]);
    } finally {
      await lab.fault("tool-fault", "node2", { clear: true });
    }
  });

  it("the target's link cut while its NVRAM is verified: rolled back, the old active online", async () => {
    try {
      const op = await switchoverWithFault("node2", "verify NVRAM on node2 and write its data dir", () =>
        lab.fault("cut-link", "node2"),
      );
      await lab.fault("restore-link", "node2");
      await expectRolledBack(op, "node1", "node2", "verify NVRAM on node2 and write its data dir");
      expect(op.steps.some((s) => s.name === "start node2")).toBe(false);
      // A read in flight (when the outage wrote something) is lost and retried; a node that cannot
      // be reached at all is not retried again: at most two retries are noted. When the outage
      // wrote nothing, there is no read: the data dir's install fails instead.
      const notes = (op.result?.notes as string[] | undefined) ?? [];
      expect(notes.length).toBeLessThanOrEqual(2);
      for (const note of notes)
        expect(note).toMatch(
          /^nvram_read on node2: attempt \d failed \(.*(connection lost|no session channel)/,
        );
    } finally {
      await lab.fault("restore-link", "node2");
    }
  });

  it("zigbee2mqtt on the target killed while it starts: rolled back, the target's copy of the network retired", async () => {
    const op = await switchoverWithFault("node2", "wait for node2 online", () =>
      lab.fault("kill-zigbee2mqtt", "node2"),
    );
    await expectRolledBack(op, "node1", "node2", "wait for node2 online");
    expect(op.error?.message).toMatch(/zigbee2mqtt on node2 exited while starting/);
    expect(op.steps.filter((s) => s.rollback).map((s) => s.name)).toEqual([
      "stop node2",
      "retire the copy on node2",
      "raise the frame counter on node1",
      "start node1 again",
      "wait for node1 online",
    ]);
    expect((await lab.simulator("node2").status()).configured).toBe(false);
  });

  it("the target's zigbee2mqtt exits after its coordinator started the network: rolled back above the counter it used", async () => {
    const op = await switchoverWithFault("node3", undefined, async () => {});
    await expectRolledBack(op, "node1", "node3", "wait for node3 online");
    expect(op.error?.output).toMatch(/MQTT failed to connect/);
    const node3 = await dongleAtRest(lab, "node3");
    // node3's coordinator did run the network, with the copy's counters (above node1's); it no
    // longer does, and node1 went on from above them (expectRolledBack).
    const copy = op.result?.frame_counter as { restored: number };
    expect(node3.max_nwk_frame_counter).toBeGreaterThanOrEqual(copy.restored);
    expect(node3.configured).toBe(false);
    expect(op.steps.find((s) => s.name === "retire the copy on node3")?.detail).toMatch(/had counted to \d+/);
  });

  it("the target started, then out of reach before it could be stopped: the old active stays parked, the target is presumed active, a failover goes above the counter it got", async () => {
    const events = h.api.events();
    await events.ready;
    try {
      const started = await startWhenFree(h.api, "switchover", {
        target: "node2",
        reason: "lab: lost target",
      });
      const stepRunning = (name: string, rollback: boolean) =>
        events.step(
          started.id,
          (s) => s.name === name && s.status === "running" && !!s.rollback === rollback,
        );
      // node2 goes out of reach as it is started: whether its zigbee2mqtt got the start command,
      // and so whether its coordinator runs the network now, nobody can say.
      await stepRunning("start node2", false);
      await lab.fault("cut-link", "node2");
      const op = await h.api.finish(started);
      expect(op.status, JSON.stringify(stepsOf(op))).toBe("failed");
      expect(op.error?.step).toMatch(/^(start node2|wait for node2 online)$/);
      const stop = op.steps.find((s) => s.rollback && s.name === "stop node2");
      expect(stop?.status).toBe("failed");
      expect(stop?.error).toMatch(
        /node2 was started and cannot be reached to stop it .*node1 stays stopped and node2 is recorded as the active node; node1 has its own final data/,
      );
      expect(op.steps.filter((s) => s.rollback).map((s) => s.name)).toEqual(["stop node2"]);
      expect((await h.api.status()).active).toBe("node2");
      const copy = op.result?.frame_counter as { restored: number };
      // node1's coordinator is parked and stays so; nothing started it again.
      expect(await lab.simulator("node1").status()).toMatchObject({ state: "hold", configured: true });
      expect((await lab.service("node1", "status")).code).not.toBe(0);

      // The operator fails over to node1 while node2 is still out of reach (no fence command):
      // node1 resumes above the counter written onto node2 plus what node2 can have sent since.
      const failover = await runWhenFree(h.api, "failover", { target: "node1", reason: "lab: node2 lost" });
      expect(failover.status, JSON.stringify(stepsOf(failover))).toBe("succeeded");
      const restore = failover.steps.find((s) => s.key === "restore-target-coordinator");
      expect(restore?.detail).toMatch(/the counter written onto node2 at \d+ \+ \d+ for its age \+ 2500\)$/);
      const resumed = failover.result?.frame_counter as { before: number; restored: number };
      expect(resumed.before).toBe(copy.restored);
      expect(resumed.restored).toBeGreaterThan(copy.restored + INCREMENT);
      const node2 = await lab.simulator("node2").status();
      expect((await lab.simulator("node1").status()).nwk_frame_counter).toBeGreaterThan(
        node2.max_nwk_frame_counter,
      );
      // Back in reach, node2's stray coordinator is parked by the split-brain guard.
      await lab.fault("restore-link", "node2");
      await h.api.waitForStatus(
        "node2 no longer fenced",
        (s) => !s.fenced.node2 && s.nodes.some((n) => n.id === "node2" && n.reachable),
        120_000,
      );
      await expectActive(h, "node1", network);
      expect((await dongleAtRest(lab, "node2", 60_000)).state).not.toBe("started");
    } finally {
      events.stop();
      await lab.fault("restore-link", "node2");
    }
  });

  it("the old active's link cut after the point of no return: the new active stays online, the failure is reported", async () => {
    try {
      // "start node2" begins once node1's parking (which ran beside node2's write and verification)
      // has ended: the cut comes after node1's last job in the outage.
      const op = await switchoverWithFault("node2", "start node2", () => lab.fault("cut-link", "node1"));
      expect(op.status).toBe("failed");
      expect(op.error?.step).toBe("stage on node1");
      expect(op.result).toMatchObject({ from: "node1", to: "node2", committed: true });
      expect(op.steps.some((s) => s.rollback)).toBe(false);
      expect(op.steps.find((s) => s.name === "stage on node3")?.status).toBe("succeeded");
      await lab.fault("restore-link", "node1");
      await expectActive(h, "node2", network);
      const alert = (await h.api.status()).alerts.find((a) => a.kind === "takeover_failed");
      expect(alert).toMatchObject({ severity: "warning" });
      expect(alert?.message).toMatch(/moved the network \(node2 is active\), but "stage on node1" failed/);
      // Once node1 is back, a sync stages it and the warning goes.
      await h.api.waitForStatus(
        "node1 reachable",
        (s) => s.nodes.find((n) => n.id === "node1")?.reachable === true,
      );
      expect((await runWhenFree(h.api, "sync")).status).toBe("succeeded");
      expect((await h.api.status()).alerts.find((a) => a.kind === "takeover_failed")).toBeUndefined();
    } finally {
      await lab.fault("restore-link", "node1");
    }
  });
});

describe("a target whose configuration does not match its dongle", () => {
  it("zigbee2mqtt refuses to start (configuration-adapter mismatch): rolled back at once, with its log", async () => {
    // node3's configuration.yaml now names another PAN ID than the network copied to its dongle.
    await h.stop();
    h = await startSidecar(lab, sidecarConfig({ "advanced.pan_id": 4242 }));
    expect((await runWhenFree(h.api, "sync")).status).toBe("succeeded");
    const op = await switchoverWithFault("node3", undefined, async () => {});
    await expectRolledBack(op, "node2", "node3", "wait for node3 online");
    expect(op.error?.message).toMatch(/zigbee2mqtt on node3 exited while starting/);
    expect(op.error?.output).toMatch(/configuration-adapter mismatch/);
  });
});
