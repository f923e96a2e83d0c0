import { describe, expect, it } from "vitest";
import { deriveStatus, type HealthInput, standbyReadiness } from "../../../sidecar/cluster/health.js";
import type { NodeProbe } from "../../../sidecar/cluster/probe.js";
import { initialState } from "../../../sidecar/store/state.js";
import type { BridgeStatus, ClusterState } from "../../../sidecar/types.js";

const NOW = Date.parse("2026-11-26T12:00:00Z");

function state(extra: Partial<ClusterState> = {}): ClusterState {
  return {
    ...initialState(),
    active: "node1",
    staging: {
      node2: { snapshot_id: "data-1", at: new Date(NOW - 60_000).toISOString(), operation_id: "op" },
    },
    ...extra,
  };
}

const online: BridgeStatus = { broker_connected: true, state: "online", publishing_node: "node1" };
const quick = (extra: Partial<NodeProbe> = {}): NodeProbe => ({
  at: NOW,
  reachable: true,
  latency_ms: 3,
  service: "stopped",
  port_present: true,
  ...extra,
});
const full = (extra: Partial<NodeProbe> = {}): NodeProbe => ({
  ...quick(),
  tools: { ok: true, detail: "ok" },
  ...extra,
});

function input(extra: Partial<HealthInput>): HealthInput {
  return {
    id: "node2",
    state: state(),
    bridge: online,
    quick: quick(),
    failures: 0,
    failureThreshold: 3,
    full: full(),
    latestSnapshotId: "data-1",
    stagingMaxAgeMs: 900_000,
    now: NOW,
    ...extra,
  };
}

describe("derived node health", () => {
  it("the active node: healthy, degraded, down", () => {
    const active = (extra: Partial<HealthInput>) => deriveStatus(input({ id: "node1", ...extra }));
    expect(active({ quick: quick({ service: "running" }) })).toMatchObject({
      role: "active",
      health: "active-healthy",
    });
    expect(active({ quick: quick({ service: "stopped" }) })).toMatchObject({
      health: "active-down",
      reason: "zigbee2mqtt is not running",
    });
    expect(
      active({ quick: quick({ service: "running" }), bridge: { ...online, broker_connected: false } }),
    ).toMatchObject({
      health: "active-degraded",
      reason: "controller cannot see the MQTT broker",
    });
    expect(
      active({ quick: quick({ service: "running" }), bridge: { ...online, state: "offline" } }),
    ).toMatchObject({
      health: "active-degraded",
    });
    expect(active({ quick: quick({ service: "running", port_present: false }) }).health).toBe(
      "active-degraded",
    );
  });

  it("one failed probe is not yet unreachable; the threshold is", () => {
    const flaky = quick({ reachable: false, error: "no answer" });
    expect(deriveStatus(input({ quick: flaky, failures: 2 })).reachable).toBe(true);
    expect(deriveStatus(input({ quick: flaky, failures: 3 }))).toMatchObject({
      health: "unreachable",
      reachable: false,
    });
    expect(deriveStatus(input({ id: "node1", quick: flaky, failures: 3 })).health).toBe("unreachable");
  });

  it("a standby is ready only when a switchover to it would succeed now", () => {
    expect(deriveStatus(input({}))).toMatchObject({ role: "standby", health: "standby-ready" });
    const notReady = (extra: Partial<HealthInput>) => standbyReadiness(input(extra)).reasons;
    expect(notReady({ quick: quick({ service: "running" }) })).toEqual(["zigbee2mqtt is running"]);
    expect(notReady({ quick: quick({ port_present: false }) })).toEqual(["coordinator port missing"]);
    expect(notReady({ full: full({ tools: { ok: false, detail: "No module named zigpy_znp" } }) })).toEqual([
      "zigpy-znp tools not usable: No module named zigpy_znp",
    ]);
    const oldNode = {
      ok: false,
      what: "Node.js for the ember tool",
      detail: "node --version: v16.20.2 is older than Node.js 18",
    };
    expect(notReady({ full: full({ tools: oldNode }) })).toEqual([
      "Node.js for the ember tool not usable: node --version: v16.20.2 is older than Node.js 18",
    ]);
    expect(notReady({ latestSnapshotId: "data-2" })).toEqual(["staged copy is not the latest snapshot"]);
    expect(notReady({ now: NOW + 3_600_000 })).toEqual(["staged copy is 61 min old"]);
    expect(notReady({ state: state({ staging: {} }) })).toEqual(["nothing staged yet"]);
    expect(notReady({ full: undefined })).toEqual(["tools not checked yet"]);
    expect(deriveStatus(input({ quick: quick({ port_present: false }) }))).toMatchObject({
      health: "standby-not-ready",
      reason: "coordinator port missing",
    });
  });

  it("a fenced node says so", () => {
    const fenced = state({
      fenced: { node2: { at: new Date(NOW).toISOString(), reason: "failover to node3" } },
    });
    expect(deriveStatus(input({ state: fenced }))).toMatchObject({
      health: "fenced",
      reason: "fenced: failover to node3",
    });
  });

  it("nothing probed yet is unknown, not healthy", () => {
    expect(deriveStatus(input({ quick: undefined, full: undefined }))).toMatchObject({
      health: "unknown",
      reachable: null,
    });
  });
});
