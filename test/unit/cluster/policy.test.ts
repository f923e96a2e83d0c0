import { EventEmitter } from "node:events";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { stringify } from "yaml";
import { Alerts } from "../../../sidecar/cluster/alerts.js";
import type { ClusterContext } from "../../../sidecar/cluster/context.js";
import { ClusterMetrics } from "../../../sidecar/cluster/metrics.js";
import type { Monitor } from "../../../sidecar/cluster/monitor.js";
import { ArmingPreemption } from "../../../sidecar/cluster/operations/standby.js";
import { FailoverPolicy } from "../../../sidecar/cluster/policy.js";
import { OperationRunner } from "../../../sidecar/cluster/runner.js";
import { parseConfig } from "../../../sidecar/config/load.js";
import { createRegistry } from "../../../sidecar/metrics.js";
import { EventBus } from "../../../sidecar/notify/bus.js";
import { Journal } from "../../../sidecar/store/journal.js";
import { StateStore } from "../../../sidecar/store/state.js";
import type { BridgeStatus, NodeStatus } from "../../../sidecar/types.js";
import { unreachableNodes } from "../../helpers/sidecar.js";

/** A bridge whose status the test sets, answering health checks as told. */
class FakeWatcher extends EventEmitter {
  bridge: BridgeStatus = { broker_connected: true, state: "online", publishing_node: "node1" };
  setState(state: "online" | "offline") {
    this.bridge = { ...this.bridge, state };
    this.emit("state", { state, at: Date.now(), publishingNode: this.bridge.publishing_node });
  }
  healthy = true;
  republished = 0;
  async republishOnline() {
    this.republished++;
    this.setState("online");
  }
  status() {
    return structuredClone(this.bridge);
  }
  async request() {
    return this.healthy ? { status: "ok" as const } : { status: "error" as const, error: "timeout" };
  }
}

function nodeStatus(id: string, extra: Partial<NodeStatus>): NodeStatus {
  return {
    id,
    role: id === "node1" ? "active" : "standby",
    health: id === "node1" ? "active-healthy" : "standby-ready",
    reason: "",
    reachable: true,
    zigbee2mqtt_running: id === "node1",
    coordinator_port_present: true,
    tools_present: true,
    checks: [],
    ...extra,
  };
}

let t = Date.parse("2026-11-26T12:00:00Z");
let statuses: Record<string, NodeStatus>;
let failures: Record<string, { count: number; since?: number }>;
let ready: Record<string, boolean>;
let expedited: string[] = [];
let actions: string[];
let watcher: FakeWatcher;
let cx: ClusterContext;
let policy: FailoverPolicy;

function decisions(): string[] {
  return cx.runner
    .list()
    .filter((o) => o.kind === "decision")
    .map((o) => `${o.result?.decision}: ${o.result?.detail}`)
    .reverse();
}

function setup(failover: Record<string, unknown> = {}) {
  const dir = mkdtempSync(join(tmpdir(), "z2mha-policy-"));
  const config = parseConfig(
    stringify({
      state_dir: dir,
      mqtt: { url: "mqtt://127.0.0.1:1" },
      nodes: unreachableNodes(),
      failover: { grace: "10s", restart_attempts: 1, cooldown: "10m", ...failover },
    }),
  );
  const bus = new EventBus();
  const state = new StateStore(dir);
  state.update((s) => {
    s.active = "node1";
  });
  watcher = new FakeWatcher();
  cx = {
    config,
    state,
    bus,
    alerts: new Alerts(bus),
    runner: new OperationRunner(Journal.open(join(dir, "journal.jsonl")), bus),
    watcher,
    metrics: new ClusterMetrics(createRegistry(), ["node1", "node2"]),
    nodes: new Map(config.nodes.map((n) => [n.id, { id: n.id, config: n }])),
    logger: { warn() {}, error() {}, info() {}, debug() {} },
    arming: new ArmingPreemption(),
  } as unknown as ClusterContext;
  statuses = { node1: nodeStatus("node1", {}), node2: nodeStatus("node2", {}) };
  failures = { node1: { count: 0 }, node2: { count: 0 } };
  ready = { node2: true };
  actions = [];
  expedited = [];
  const monitor = {
    status: (id: string) => statuses[id],
    statuses: () => Object.values(statuses),
    failures: (id: string) => failures[id],
    expedite: (id: string) => expedited.push(id),
    readiness: (id: string) => ({
      ready: !!ready[id],
      reasons: ready[id] ? [] : ["coordinator port missing"],
    }),
  } as unknown as Monitor;
  policy = new FailoverPolicy(cx, monitor, {
    restart: (node) => actions.push(`restart ${node}`),
    failover: (target) => actions.push(`failover ${target}`),
    stopStray: (node) => actions.push(`stop ${node}`),
    releaseFenced: (node) => actions.push(`release ${node}`),
  });
  // Bridge events only, no timer: the test drives evaluate() itself.
  policy.start({ intervalMs: 0 });
}

async function at(seconds: number) {
  vi.setSystemTime(t + seconds * 1000);
  await policy.evaluate();
}

function crash() {
  statuses.node1 = nodeStatus("node1", { health: "active-down", zigbee2mqtt_running: false });
  watcher.setState("offline");
}

function recover() {
  watcher.setState("online");
  statuses.node1 = nodeStatus("node1", {});
}

beforeEach(() => {
  vi.useFakeTimers({ toFake: ["Date"] });
  t = Date.parse("2026-11-26T12:00:00Z");
  vi.setSystemTime(t);
});
afterEach(() => vi.useRealTimers());

describe("failover policy", () => {
  it("a crash: nothing before the grace period, then a restart in place, then a failover", async () => {
    setup();
    crash();
    await at(1);
    await at(9);
    expect(actions).toEqual([]);
    await at(11);
    expect(actions).toEqual(["restart node1"]);
    // The restart did not help; its own grace runs from when it was ordered.
    await at(15);
    expect(actions).toEqual(["restart node1"]);
    await at(22);
    expect(actions).toEqual(["restart node1", "failover node2"]);
    const recorded = cx.runner.list().filter((o) => o.kind === "decision");
    expect(recorded.find((o) => o.result?.decision === "failover")?.result).toMatchObject({
      detail: "fail over from node1 to node2",
      detection_to_action_ms: expect.any(Number),
    });
  });

  it("a sync arming a standby when the policy must act: the arming is preempted, then the failover", async () => {
    setup({ restart_attempts: 0 });
    // A sync whose arming step only ends when it is preempted (as its remote tool would).
    const sync = cx.runner.start({
      kind: "sync",
      mutating: true,
      trigger: "test",
      params: {},
      ctx: {},
      steps: [
        {
          key: "arm:node2",
          name: "arm coordinator on node2",
          timeoutMs: 600_000,
          run: () =>
            new Promise<string>((resolve) =>
              cx.arming.signal.addEventListener("abort", () => resolve("not armed: preempted"), {
                once: true,
              }),
            ),
        },
      ],
    });
    crash();
    await at(5);
    // Detection goes on during a sync, and nothing is cut short before the grace period.
    expect(cx.arming.signal.aborted).toBe(false);
    await at(11);
    expect(cx.arming.signal.aborted).toBe(true);
    expect(actions).toEqual([]);
    await vi.waitFor(() => expect(cx.runner.running).toBeUndefined());
    expect(cx.runner.get(sync.id)?.steps[0]?.detail).toBe("not armed: preempted");
    await at(12);
    expect(actions).toEqual(["failover node2"]);
  });

  it("restart_attempts 0: straight to failover after the grace period", async () => {
    setup({ restart_attempts: 0 });
    crash();
    await at(11);
    expect(actions).toEqual(["failover node2"]);
  });

  it("flapping shorter than the grace period never acts", async () => {
    setup();
    for (let i = 0; i < 10; i++) {
      vi.setSystemTime(t + i * 12 * 1000);
      crash();
      await at(i * 12 + 1);
      await at(i * 12 + 7);
      recover();
      await at(i * 12 + 8);
    }
    expect(actions).toEqual([]);
    expect(decisions().filter((d) => d.startsWith("recovered"))).toHaveLength(10);
  });

  it("an unreachable active is not restarted in place: it is failed over", async () => {
    setup();
    watcher.healthy = false;
    statuses.node1 = nodeStatus("node1", { health: "unreachable", reachable: false });
    failures.node1 = { count: 3, since: t };
    await at(5);
    expect(actions).toEqual([]);
    await at(11);
    expect(actions).toEqual(["failover node2"]);
  });

  it("probes alone are not enough: while zigbee2mqtt answers on MQTT nothing happens", async () => {
    setup();
    statuses.node1 = nodeStatus("node1", { health: "unreachable", reachable: false });
    failures.node1 = { count: 5, since: t };
    await at(60);
    expect(actions).toEqual([]);
  });

  it("a broker outage is not a dead active: no action, an alert that the bridge cannot be seen", async () => {
    setup();
    watcher.bridge = { ...watcher.bridge, broker_connected: false };
    statuses.node1 = nodeStatus("node1", { health: "active-degraded" });
    await at(60);
    expect(actions).toEqual([]);
    expect(cx.alerts.list().map((a) => a.kind)).toEqual(["broker_unreachable"]);
  });

  it("maintenance mode and a disabled automatic failover: nothing, recorded once with the reason", async () => {
    setup();
    cx.state.update((s) => {
      s.automation.maintenance = true;
    });
    crash();
    await at(11);
    await at(30);
    expect(actions).toEqual([]);
    expect(decisions()).toEqual(["not acting: maintenance mode pauses all automation"]);
    cx.state.update((s) => {
      s.automation.maintenance = false;
      s.automation.automatic_failover = false;
    });
    await at(31);
    expect(decisions()).toEqual([
      "not acting: maintenance mode pauses all automation",
      "not acting: automatic failover is switched off",
    ]);
  });

  it("no standby ready: no failover, a clear alert", async () => {
    setup({ restart_attempts: 0 });
    ready = {};
    crash();
    await at(11);
    await at(20);
    expect(actions).toEqual([]);
    expect(cx.alerts.list().find((a) => a.kind === "no_standby_ready")?.message).toContain(
      "node2: coordinator port missing",
    );
    expect(decisions()).toEqual(["not acting: no standby is ready (node2: coordinator port missing)"]);
  });

  it("a stopped service with bridge/state online is not down: no health check is needed, no incident", async () => {
    // zigbee2mqtt just came back: bridge/state says online before the next probe sees it running.
    setup();
    watcher.healthy = false;
    statuses.node1 = nodeStatus("node1", { health: "active-down", zigbee2mqtt_running: false });
    await at(1);
    await at(30);
    expect(actions).toEqual([]);
    expect(decisions()).toEqual([]);
    expect(cx.alerts.list()).toEqual([]);
  });

  it("the incident's alerts end with it: after a failover, and when no standby was ready and the active came back", async () => {
    setup({ restart_attempts: 0 });
    ready = {};
    crash();
    await at(11);
    expect(
      cx.alerts
        .list()
        .map((a) => a.kind)
        .sort(),
    ).toEqual(["active_down", "no_standby_ready"]);
    recover();
    await at(12);
    expect(cx.alerts.list()).toEqual([]);

    ready = { node2: true };
    crash();
    await at(30);
    expect(actions).toEqual(["failover node2"]);
    // The failover made node2 the active; node2 is healthy.
    cx.state.update((s) => {
      s.active = "node2";
    });
    statuses.node2 = nodeStatus("node2", {
      role: "active",
      health: "active-healthy",
      zigbee2mqtt_running: true,
    });
    statuses.node1 = nodeStatus("node1", { role: "standby", zigbee2mqtt_running: false });
    watcher.bridge = { ...watcher.bridge, publishing_node: "node2" };
    watcher.setState("online");
    await at(31);
    expect(cx.alerts.list()).toEqual([]);
  });

  it("cooldown between automatic failovers", async () => {
    setup({ restart_attempts: 0, cooldown: "10m" });
    crash();
    await at(11);
    expect(actions).toEqual(["failover node2"]);
    // Suppose node2 went down too a minute later (state still says node1 in this fake world).
    crash();
    await at(71);
    await at(90);
    expect(actions).toEqual(["failover node2"]);
    expect(decisions().some((d) => d.includes("cooldown is 600s"))).toBe(true);
  });

  it("split brain: zigbee2mqtt on a standby is stopped at once", async () => {
    setup();
    statuses.node2 = nodeStatus("node2", { zigbee2mqtt_running: true, health: "standby-not-ready" });
    await at(0);
    expect(actions).toEqual(["stop node2"]);
    expect(cx.alerts.list()[0]).toMatchObject({ kind: "split_brain", node: "node2", severity: "critical" });
  });

  it("split brain seen on MQTT: bridge/info from a standby's frontend host", async () => {
    setup();
    watcher.bridge = { ...watcher.bridge, publishing_node: "node2" };
    await at(0);
    expect(actions).toEqual(["stop node2"]);
  });
});

describe("a stale bridge/state (a gone zigbee2mqtt's last will)", () => {
  it("is put right once the active's zigbee2mqtt runs and answers, without a restart", async () => {
    setup({ automatic: false });
    // node1 lost, node2 took over and announced itself; node1's will arrives afterwards.
    cx.state.update((s) => {
      s.active = "node2";
    });
    statuses = {
      node1: nodeStatus("node1", {
        role: "standby",
        health: "unreachable",
        reachable: false,
        zigbee2mqtt_running: null,
      }),
      node2: nodeStatus("node2", { role: "active", health: "active-degraded", zigbee2mqtt_running: true }),
    };
    watcher.bridge = { ...watcher.bridge, publishing_node: "node2" };
    watcher.setState("offline");
    await at(1);
    expect(watcher.republished).toBe(0);
    await at(6);
    expect(watcher.republished).toBe(1);
    expect(watcher.status().state).toBe("online");
    expect(actions).toEqual([]);
    expect(decisions()).toEqual([
      expect.stringMatching(
        /^bridge state restored: bridge\/state said offline for 6s while zigbee2mqtt runs on node2 and answers a health check/,
      ),
    ]);
  });

  it("is left alone while zigbee2mqtt does not answer, while another node runs one, and in maintenance mode", async () => {
    setup();
    statuses.node1 = nodeStatus("node1", { health: "active-degraded" });
    watcher.healthy = false;
    watcher.setState("offline");
    await at(10);
    expect(watcher.republished).toBe(0);

    watcher.healthy = true;
    statuses.node2 = nodeStatus("node2", { zigbee2mqtt_running: true });
    cx.state.update((s) => {
      s.automation.maintenance = true;
    });
    await at(30);
    expect(watcher.republished).toBe(0);

    cx.state.update((s) => {
      s.automation.maintenance = false;
    });
    statuses.node2 = nodeStatus("node2", {});
    await at(40);
    expect(watcher.republished).toBe(1);
  });
});

describe("split-brain guard in maintenance mode", () => {
  it("raises the alert but leaves the node alone", async () => {
    setup();
    cx.state.update((s) => {
      s.automation.maintenance = true;
    });
    statuses.node2 = nodeStatus("node2", { zigbee2mqtt_running: true, health: "standby-not-ready" });
    await at(0);
    expect(actions).toEqual([]);
    expect(cx.alerts.list()[0]?.message).toContain("maintenance mode: left running");
  });

  it("clears the alert once the stray is stopped by hand", async () => {
    setup();
    cx.state.update((s) => {
      s.automation.maintenance = true;
    });
    statuses.node2 = nodeStatus("node2", { zigbee2mqtt_running: true, health: "standby-not-ready" });
    await at(0);
    expect(cx.alerts.list().map((a) => a.kind)).toEqual(["split_brain"]);
    statuses.node2 = nodeStatus("node2", { zigbee2mqtt_running: false });
    await at(1);
    expect(cx.alerts.list()).toEqual([]);
  });
});

/** Starts an operation of `kind` that runs until the returned function is called. */
function holdOperation(kind: "sync" | "switchover"): () => void {
  let release!: () => void;
  cx.runner.start({
    kind,
    mutating: true,
    trigger: "test",
    params: {},
    ctx: {},
    steps: [
      { key: "wait", name: "wait", timeoutMs: 600_000, run: () => new Promise<void>((r) => (release = r)) },
    ],
  });
  return () => release();
}

describe("a sync running while the active dies", () => {
  it("does not stop the incident's clock; the action waits for the sync and follows at once", async () => {
    setup({ restart_attempts: 0 });
    const release = holdOperation("sync");
    crash();
    await at(1);
    expect(cx.alerts.list().map((a) => a.kind)).toContain("active_down");
    await at(20);
    expect(actions).toEqual([]);
    release();
    await new Promise((r) => setTimeout(r, 10));
    await at(21);
    expect(actions).toEqual(["failover node2"]);
    const decision = cx.runner.list().find((o) => o.result?.decision === "failover");
    expect(Number(decision?.result?.detection_to_action_ms)).toBeGreaterThanOrEqual(21_000);
  });

  it("a takeover in progress is not judged at all", async () => {
    setup({ restart_attempts: 0 });
    const release = holdOperation("switchover");
    crash();
    await at(30);
    expect(cx.alerts.list()).toEqual([]);
    expect(actions).toEqual([]);
    release();
  });
});

describe("a fenced node seen again", () => {
  it("with zigbee2mqtt stopped: released (parked, then the fence lifted) by an operation, retried a minute later at most", async () => {
    setup({});
    cx.state.update((s) => {
      s.fenced.node2 = { at: new Date().toISOString(), reason: "failover to node1: unreachable" };
    });
    statuses.node2 = nodeStatus("node2", { reachable: false, health: "unreachable" });
    await at(1);
    expect(actions).toEqual([]);
    statuses.node2 = nodeStatus("node2", { zigbee2mqtt_running: false });
    await at(2);
    expect(actions).toEqual(["release node2"]);
    // The guard never lifts the fence by itself: the chip may still run the network.
    expect(cx.state.get().fenced.node2).toBeDefined();
    await at(30);
    expect(actions).toEqual(["release node2"]);
    await at(63);
    expect(actions).toEqual(["release node2", "release node2"]);
  });

  it("with zigbee2mqtt running: stopped as a stray first", async () => {
    setup({});
    cx.state.update((s) => {
      s.fenced.node2 = { at: new Date().toISOString(), reason: "failover to node1: unreachable" };
    });
    statuses.node2 = nodeStatus("node2", { zigbee2mqtt_running: true });
    await at(1);
    expect(actions).toEqual(["stop node2"]);
  });
});

describe("a crash seen on MQTT", () => {
  it("asks the monitor to probe the active at once: the probes need not wait an interval to agree", async () => {
    setup({});
    await at(1);
    expect(expedited).toEqual([]);
    crash();
    expect(expedited).toEqual(["node1"]);
  });
});
