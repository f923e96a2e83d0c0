/**
 * Monitoring and automatic failover (issue 6) in the lab, against the real sidecar: real probes
 * over SSH, the real zigbee2mqtt's bridge/state on the real broker, real faults. Small timings
 * (grace 6 s, a probe every second) so every incident plays out in seconds.
 *
 * Timing assertions are about behaviour, read from the sidecar's own records: an action never
 * starts before the grace period has passed since the first sign of trouble, and a cut link is
 * detected within the bound the configuration implies.
 */
import { spawn } from "node:child_process";
import { cpus } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ClusterStatus, OperationRecord } from "../../sidecar/types.js";
import {
  decisionsSince,
  leaveNode1Active,
  metricsText,
  nodeIn,
  opsSince,
  sample,
  startedAt,
  waitForDecision,
  waitForEnded,
  waitForReadyStandbys,
} from "./policy-helpers.js";
import { baseline, type SidecarHandle, sharedLab, sleep, startSidecar } from "./sidecar-harness.js";
import type { HostId, Lab } from "./world.js";

const GRACE_MS = 6_000;
const PROBE_INTERVAL_MS = 1_000;
const PROBE_TIMEOUT_MS = 1_000;
const FAILURES = 3;
/** The policy asks zigbee2mqtt for a health check when the host went silent (policy.ts). */
const HEALTH_CHECK_MS = 2_500;
const POLICY_TICK_MS = 500;

let lab: Lab;
let h: SidecarHandle | undefined;

/**
 * (Re)starts the sidecar with automatic failover on and the given restart_attempts. A restart keeps
 * the state dir, as an operator changing the config would: snapshots and staged copies stay known.
 */
async function sidecarWith(restartAttempts: number): Promise<SidecarHandle> {
  const stateDir = h ? join(dirname(h.configPath), "state") : undefined;
  await h?.stop();
  h = await startSidecar(lab, {
    failover: {
      automatic: true,
      grace: `${GRACE_MS}ms`,
      restart_attempts: restartAttempts,
      cooldown: "1s",
      arm_standby: true,
    },
    monitor: {
      probe_interval: `${PROBE_INTERVAL_MS}ms`,
      probe_timeout: `${PROBE_TIMEOUT_MS}ms`,
      failures: FAILURES,
    },
    ...(stateDir ? { state_dir: stateDir } : {}),
  });
  return h;
}

function api() {
  if (!h) throw new Error("no sidecar");
  return h.api;
}

/** The active is healthy and every standby ready (a sync first when a standby has nothing staged). */
async function settled(): Promise<ClusterStatus> {
  const status = await api().waitForStatus(
    "a healthy active node",
    (s) => s.active !== null && nodeIn(s, s.active).health === "active-healthy" && !s.running_operation,
  );
  if (status.nodes.some((n) => n.id !== status.active && n.health !== "standby-ready")) {
    const sync = await api().run("sync");
    expect(sync.status, JSON.stringify(sync.error)).toBe("succeeded");
  }
  return waitForReadyStandbys(api());
}

async function killActive(active: string): Promise<number> {
  const mark = Date.now();
  await lab.fault("kill-zigbee2mqtt", active as HostId);
  return mark;
}

/** Nothing the policy does by itself (restart, failover, fence) started since `since`. */
async function automaticActionsSince(since: number): Promise<OperationRecord[]> {
  return (await opsSince(api(), since)).filter(
    (o) => ["restart", "failover", "switchover", "fence"].includes(o.kind) && o.trigger !== "api",
  );
}

/**
 * Keeps every CPU of the machine busy for `ms` (one busy loop per CPU, at the sidecar's own
 * priority: the nodes, sshd, zigbee2mqtt and the sidecar share these CPUs); resolves with the CPU
 * time each loop got, in milliseconds.
 */
function burnCpus(ms: number): Promise<number[]> {
  const script = `const end = Date.now() + ${ms}; let x = 0; while (Date.now() < end) x++; const u = process.cpuUsage(); console.log(Math.round((u.user + u.system) / 1000));`;
  return Promise.all(
    cpus().map(
      () =>
        new Promise<number>((resolve, reject) => {
          const child = spawn(process.execPath, ["-e", script], { stdio: ["ignore", "pipe", "inherit"] });
          let out = "";
          child.stdout.on("data", (d: Buffer) => {
            out += d.toString();
          });
          child.on("error", reject);
          child.on("close", () => resolve(Number(out.trim())));
        }),
    ),
  );
}

/** The policy's action decision (`restart in place` or `failover`) with the timing it recorded. */
function actionTiming(decision: OperationRecord) {
  const result = decision.result as {
    first_sign_at: string;
    detected_at: string;
    detection_to_action_ms: number;
  };
  return {
    firstSign: Date.parse(result.first_sign_at),
    detected: Date.parse(result.detected_at),
    detectionToAction: result.detection_to_action_ms,
    at: startedAt(decision),
  };
}

beforeAll(async () => {
  lab = await sharedLab();
  await baseline(lab);
});

afterAll(async () => {
  await h?.stop();
  await leaveNode1Active(lab);
});

describe("automatic failover with restart_attempts 1", () => {
  beforeAll(async () => {
    await sidecarWith(1);
  });

  it("SIGKILL of the active's zigbee2mqtt: restarted in place after the grace period, no failover; detection-to-action recorded", async () => {
    await settled();
    const mark = await killActive("node1");
    const restart = await waitForEnded(api(), "restart", mark);
    expect(restart).toMatchObject({ status: "succeeded", trigger: "policy", params: { node: "node1" } });

    const [decision, ...more] = await decisionsSince(api(), mark, "restart in place");
    expect(more).toEqual([]);
    expect(decision?.params.evidence).toEqual([
      expect.stringMatching(/^bridge\/state offline since /),
      expect.stringMatching(/^service status says zigbee2mqtt is not running \(zigbee2mqtt crashed\)/),
    ]);
    const timing = actionTiming(decision as OperationRecord);
    // The first sign is the kill's last will on MQTT, not earlier than the kill.
    expect(timing.firstSign).toBeGreaterThanOrEqual(mark);
    // Nothing before the grace period: the action comes at least `grace` after the first sign.
    expect(timing.detectionToAction).toBeGreaterThanOrEqual(GRACE_MS);
    expect(timing.at - timing.firstSign).toBeGreaterThanOrEqual(GRACE_MS);
    expect(startedAt(restart)).toBeGreaterThanOrEqual(timing.firstSign + GRACE_MS);
    expect(await automaticActionsSince(mark)).toEqual([expect.objectContaining({ id: restart.id })]);

    // Back where it was: node1 active and online, no failover, the incident closed.
    await lab.waitForZigbee2mqtt("node1");
    await waitForDecision(api(), mark, "recovered");
    await api().waitForStatus(
      "node1 healthy again, the incident's alert cleared",
      (s) =>
        s.active === "node1" &&
        nodeIn(s, "node1").health === "active-healthy" &&
        !s.alerts.some((a) => a.kind === "active_down"),
    );
    expect(await opsSince(api(), mark, "failover")).toEqual([]);
    const metrics = await metricsText(api());
    expect(
      sample(metrics, "z2mha_failure_detection_to_action_seconds_count", { cause: "restart in place" }),
    ).toBe(1);
    expect(
      sample(metrics, "z2mha_failure_detection_to_action_seconds_sum", { cause: "restart in place" }),
    ).toBeCloseTo(timing.detectionToAction / 1000, 1);
  });

  it("flapping (zigbee2mqtt offline/online, each time shorter than the grace period): no restart, no failover, each recovery recorded", async () => {
    await settled();
    const mark = Date.now();
    const flaps = 3;
    for (let i = 0; i < flaps; i++) {
      const down = Date.now();
      await lab.fault("kill-zigbee2mqtt", "node1");
      // Seen down by both MQTT and the probes: a real incident, not a blip between two probes.
      await api().waitForStatus(
        "node1 seen down",
        (s) => nodeIn(s, "node1").health === "active-down",
        GRACE_MS,
      );
      await lab.fault("start-zigbee2mqtt", "node1");
      await lab.waitForZigbee2mqtt("node1");
      const recovered = await waitForDecision(api(), down, "recovered", () => true, GRACE_MS);
      // The test's own precondition: this flap was shorter than the grace period.
      expect(startedAt(recovered) - down).toBeLessThan(GRACE_MS);
      expect(recovered.result?.detail).toMatch(/^node1 is healthy again after \d+s$/);
      await sleep(1_000);
    }
    expect(await decisionsSince(api(), mark, "recovered")).toHaveLength(flaps);
    expect(await automaticActionsSince(mark)).toEqual([]);
    expect(await decisionsSince(api(), mark, /^(restart in place|failover|not acting)$/)).toEqual([]);
    expect((await api().status()).active).toBe("node1");
  });

  it("every CPU busy for three grace periods: no restart, no failover, no incident", async () => {
    await settled();
    const mark = Date.now();
    const burnMs = 3 * GRACE_MS;
    const seen: string[] = [];
    const watching = (async () => {
      while (Date.now() < mark + burnMs) {
        seen.push(nodeIn(await api().status(), "node1").health);
        await sleep(500);
      }
    })();
    const [cpuMs] = await Promise.all([burnCpus(burnMs), watching]);
    expect(seen.length).toBeGreaterThan(10);
    // The load was real: each loop had at least half a CPU for the whole time.
    for (const ms of cpuMs) expect(ms).toBeGreaterThan(burnMs / 2);
    await sleep(GRACE_MS);
    expect(await automaticActionsSince(mark)).toEqual([]);
    expect(await decisionsSince(api(), mark, /^(restart in place|failover)$/)).toEqual([]);
    expect(seen.every((health) => health === "active-healthy" || health === "active-degraded")).toBe(true);
    const status = await api().status();
    expect(status.active).toBe("node1");
    expect(status.alerts.filter((a) => a.kind === "active_down")).toEqual([]);
  });

  it("MQTT broker restart: no action, status shows the broker outage (not the node as down)", async () => {
    await settled();
    const mark = Date.now();
    await lab.fault("stop-mqtt", "controller");
    try {
      const outage = await api().waitForStatus(
        "the broker outage in status",
        (s) => !s.bridge.broker_connected && s.alerts.some((a) => a.kind === "broker_unreachable"),
        30_000,
      );
      expect(nodeIn(outage, "node1")).toMatchObject({
        health: "active-degraded",
        reason: "controller cannot see the MQTT broker",
        zigbee2mqtt_running: true,
      });
      expect(outage.alerts.find((a) => a.kind === "broker_unreachable")?.message).toMatch(
        /cannot see the MQTT broker/,
      );
      // Longer than the grace period: a broker outage must never look like a dead active.
      await sleep(GRACE_MS + 2_000);
      const during = await api().status();
      expect(during.bridge.broker_connected).toBe(false);
      expect(during.active).toBe("node1");
      expect(during.alerts.filter((a) => a.kind === "active_down")).toEqual([]);
    } finally {
      await lab.fault("start-mqtt", "controller");
    }
    const after = await api().waitForStatus(
      "the broker back and node1 healthy",
      (s) =>
        s.bridge.broker_connected &&
        s.bridge.state === "online" &&
        nodeIn(s, "node1").health === "active-healthy" &&
        !s.alerts.some((a) => a.kind === "broker_unreachable"),
      90_000,
    );
    expect(after.active).toBe("node1");
    expect(await automaticActionsSince(mark)).toEqual([]);
    expect(await decisionsSince(api(), mark)).toEqual([]);
    const metrics = await metricsText(api());
    expect(sample(metrics, "z2mha_mqtt_connected")).toBe(1);
  });

  it("maintenance mode: nothing automatic happens (no restart, no failover, the split-brain guard only alerts), status says so", async () => {
    await settled();
    const paused = await api().call("PUT", "/api/v1/automation", { maintenance: true });
    expect(paused).toMatchObject({ maintenance: true });
    const mark = await killActive("node1");
    try {
      const decision = await waitForDecision(api(), mark, "not acting");
      expect(decision.result?.detail).toBe("maintenance mode pauses all automation");
      expect(decision.result?.down_for_ms).toBeGreaterThanOrEqual(GRACE_MS);
      // A stray zigbee2mqtt on a standby is left running in maintenance mode: alert only.
      await lab.startZigbee2mqtt("node2");
      const split = await api().waitForStatus(
        "the split-brain alert",
        (s) => s.alerts.some((a) => a.kind === "split_brain" && a.node === "node2"),
        30_000,
      );
      expect(split.automation).toEqual({ automatic_failover: true, maintenance: true });
      expect(split.alerts.find((a) => a.kind === "split_brain")?.message).toMatch(
        /\(maintenance mode: left running\)$/,
      );
      expect(nodeIn(split, "node1").health).toBe("active-down");
      await sleep(3_000);
      expect((await lab.service("node2", "status")).code).toBe(0);
      expect(await automaticActionsSince(mark)).toEqual([]);
      // Recorded once per incident, not on every evaluation.
      expect(await decisionsSince(api(), mark, "not acting")).toHaveLength(1);

      // Stopped by hand, the stray no longer raises the alert.
      await lab.stopZigbee2mqtt("node2");
      await api().waitForStatus(
        "the split-brain alert cleared",
        (s) => !s.alerts.some((a) => a.kind === "split_brain"),
        30_000,
      );
    } finally {
      await lab.stopZigbee2mqtt("node2");
      await lab.resetNode("node2");
      await lab.fault("start-zigbee2mqtt", "node1");
    }
    await lab.waitForZigbee2mqtt("node1");
    await api().waitForStatus("node1 healthy", (s) => nodeIn(s, "node1").health === "active-healthy");
    const resumed = await api().call("PUT", "/api/v1/automation", { maintenance: false });
    expect(resumed).toMatchObject({ maintenance: false });
    expect((await api().status()).automation.maintenance).toBe(false);
    expect(await automaticActionsSince(mark)).toEqual([]);
  });
});

describe("automatic failover with restart_attempts 0", () => {
  beforeAll(async () => {
    await sidecarWith(0);
  });

  it("standby not ready (tools missing on one, coordinator port missing on the other): no failover, a clear alert instead", async () => {
    await settled();
    await lab.fault("break-tools", "node2");
    await lab.fault("unplug", "node3");
    try {
      // The tools are looked at by the thorough probe (every minute, or a check).
      await api().run("check");
      const before = await api().waitForStatus(
        "both standbys not ready",
        (s) =>
          nodeIn(s, "node2").health === "standby-not-ready" &&
          nodeIn(s, "node3").health === "standby-not-ready",
      );
      expect(nodeIn(before, "node2").reason).toMatch(
        /zigpy-znp tools not usable: .*No module named 'zigpy_znp'/s,
      );
      expect(nodeIn(before, "node2").tools_present).toBe(false);
      expect(nodeIn(before, "node3").reason).toBe("coordinator port missing");
      expect(nodeIn(before, "node3").coordinator_port_present).toBe(false);

      const mark = await killActive("node1");
      const decision = await waitForDecision(api(), mark, "not acting");
      expect(decision.result?.detail).toMatch(
        /^no standby is ready \(node2: zigpy-znp tools not usable: .*; node3: coordinator port missing\)$/s,
      );
      const status = await api().status();
      const alert = status.alerts.find((a) => a.kind === "no_standby_ready");
      expect(alert?.severity).toBe("critical");
      expect(alert?.message).toMatch(
        /^node1 is down and no standby is ready: node2: zigpy-znp tools not usable/,
      );
      expect(alert?.message).toMatch(/node3: coordinator port missing/);
      await sleep(2_000);
      expect(await automaticActionsSince(mark)).toEqual([]);
      expect((await api().status()).active).toBe("node1");

      // node1 comes back by hand: the incident and both alerts end.
      await lab.fault("start-zigbee2mqtt", "node1");
      await waitForDecision(api(), mark, "recovered");
      const after = await api().waitForStatus(
        "alerts cleared",
        (s) => !s.alerts.some((a) => a.kind === "no_standby_ready" || a.kind === "active_down"),
        30_000,
      );
      expect(after.active).toBe("node1");
    } finally {
      await lab.fault("fix-tools", "node2");
      await lab.fault("replug", "node3");
    }
    await api().run("check");
    await waitForReadyStandbys(api());
  });

  it("SIGKILL of the active's zigbee2mqtt: failover to the best ready standby after the grace period; detection-to-action recorded", async () => {
    await settled();
    const mark = await killActive("node1");
    const failover = await waitForEnded(api(), "failover", mark);
    expect(failover, JSON.stringify(failover.error)).toMatchObject({
      status: "succeeded",
      trigger: "policy",
      params: { from: "node1", to: "node2" },
    });
    const [decision, ...more] = await decisionsSince(api(), mark, "failover");
    expect(more).toEqual([]);
    const timing = actionTiming(decision as OperationRecord);
    expect(timing.firstSign).toBeGreaterThanOrEqual(mark);
    expect(timing.detectionToAction).toBeGreaterThanOrEqual(GRACE_MS);
    expect(startedAt(failover)).toBeGreaterThanOrEqual(timing.firstSign + GRACE_MS);
    // restart_attempts 0: no restart in place first.
    expect(await opsSince(api(), mark, "restart")).toEqual([]);
    expect(await decisionsSince(api(), mark, "restart in place")).toEqual([]);

    await lab.waitForZigbee2mqtt("node2");
    // The old active's alert ends with the failover (the new active is healthy).
    const status = await api().waitForStatus(
      "node2 active and healthy, no alert left about node1",
      (s) =>
        s.active === "node2" &&
        nodeIn(s, "node2").health === "active-healthy" &&
        !s.alerts.some((a) => a.kind === "active_down"),
    );
    expect(nodeIn(status, "node1").zigbee2mqtt_running).toBe(false);
    const metrics = await metricsText(api());
    expect(sample(metrics, "z2mha_failure_detection_to_action_seconds_count", { cause: "failover" })).toBe(1);
  });

  it("active's link cut: detected within the configured bound, no action during the grace period, failover; the old active is stopped when it is back", async () => {
    const before = await settled();
    const active = before.active as string;
    const cut = Date.now();
    await lab.fault("cut-link", active as HostId);
    let failover: OperationRecord;
    try {
      failover = await waitForEnded(api(), "failover", cut);
    } finally {
      await lab.fault("restore-link", active as HostId);
    }
    expect(failover, JSON.stringify(failover.error)).toMatchObject({
      status: "succeeded",
      trigger: "policy",
      params: { from: active },
    });
    const target = failover.params.to as string;
    expect(target).not.toBe(active);

    const [decision] = await decisionsSince(api(), cut, "failover");
    expect(decision?.params.evidence).toEqual([
      expect.stringMatching(/^(no answer to bridge\/request\/health_check|bridge\/state offline since )/),
      expect.stringMatching(/^\d+ probes in a row unanswered$/),
    ]);
    // Two unanswered probes and no answer on MQTT are enough (the probes go on meanwhile).
    expect(
      Number.parseInt((decision?.params.evidence as string[] | undefined)?.[1] ?? "", 10),
    ).toBeGreaterThanOrEqual(2);
    const timing = actionTiming(decision as OperationRecord);
    // Down after two probes in a row unanswered, each bounded by the probe timeout (+0.5 s), the
    // first starting within one interval of the cut, the second at once after it (at most one a
    // second); then a tick and the health check (asked beside the second probe, so at most one
    // more). One second of slack for the commands around it.
    const bound =
      PROBE_INTERVAL_MS +
      Math.min(2, FAILURES) * Math.max(1_000, PROBE_TIMEOUT_MS + 500) +
      POLICY_TICK_MS +
      HEALTH_CHECK_MS +
      1_000;
    expect(timing.detected - cut).toBeLessThanOrEqual(bound);
    expect(timing.detected).toBeGreaterThanOrEqual(timing.firstSign);
    expect(timing.firstSign).toBeGreaterThanOrEqual(cut - PROBE_INTERVAL_MS);
    // No action while the grace period had not elapsed.
    expect(timing.detectionToAction).toBeGreaterThanOrEqual(GRACE_MS);
    expect(startedAt(failover)).toBeGreaterThanOrEqual(timing.firstSign + GRACE_MS);
    expect((await automaticActionsSince(cut)).filter((o) => startedAt(o) < startedAt(failover))).toEqual([]);
    expect(failover.result?.fence).toMatchObject({ ok: false });

    // The old active kept running behind its cut cable; back on the network, the guard stops it.
    await lab.waitForZigbee2mqtt(target);
    const fence = await waitForEnded(api(), "fence", cut, (o) => o.params.node === active);
    expect(fence).toMatchObject({ status: "succeeded", trigger: "guard" });
    expect((await lab.service(active, "status")).code).not.toBe(0);
    const after = await api().waitForStatus(
      `${target} active and healthy, ${active} a standby with zigbee2mqtt stopped`,
      (s) =>
        s.active === target &&
        nodeIn(s, target).health === "active-healthy" &&
        nodeIn(s, active).reachable === true &&
        nodeIn(s, active).zigbee2mqtt_running === false,
      120_000,
    );
    expect(after.bridge).toMatchObject({ state: "online", publishing_node: target });
  });
});
