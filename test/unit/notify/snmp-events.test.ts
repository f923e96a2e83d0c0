import { describe, expect, it } from "vitest";
import { NotificationMapper } from "../../../sidecar/notify/snmp-events.js";
import type { ClusterState, NodeStatus, OperationRecord } from "../../../sidecar/types.js";

function operation(overrides: Partial<OperationRecord>): OperationRecord {
  return {
    id: "op-1",
    kind: "switchover",
    status: "running",
    mutating: true,
    started_at: "2026-11-26T10:00:00.000Z",
    trigger: "api",
    params: { from: "node1", to: "node2" },
    steps: [],
    ...overrides,
  };
}

function node(id: string, reachable: boolean | null, reason = "ssh probe ok"): NodeStatus {
  return {
    id,
    role: "standby",
    health: reachable ? "standby-ready" : "unreachable",
    reason,
    reachable,
    zigbee2mqtt_running: null,
    coordinator_port_present: null,
    tools_present: null,
    checks: [],
  };
}

function state(automatic_failover: boolean, maintenance: boolean, active = "node1"): ClusterState {
  return { version: 1, active, automation: { automatic_failover, maintenance }, fenced: {} };
}

describe("NotificationMapper: operations", () => {
  it("reports a switchover's start with both nodes and who asked", () => {
    const mapper = new NotificationMapper("home");
    const n = mapper.map({
      type: "operation.started",
      operation: operation({ reason: "weekly NVRAM refresh", trigger: "schedule" }),
    });
    expect(n?.name).toBe("z2mhaSwitchoverStarted");
    expect(n?.values).toMatchObject({
      z2mhaClusterName: "home",
      z2mhaOperationId: "op-1",
      z2mhaPreviousActiveNode: "node1",
      z2mhaNewActiveNode: "node2",
      z2mhaMessage: "switchover from node1 to node2 started (schedule: weekly NVRAM refresh)",
    });
    expect(n?.prototype).toEqual({ scriptName: "z2m-ha switchover", scriptStatus: "OK" });
  });

  it("takes the target of a failover from params.target when no 'to' is given", () => {
    const n = new NotificationMapper("home").map({
      type: "operation.started",
      operation: operation({
        kind: "failover",
        trigger: "policy",
        params: { from: "node1", target: "node3" },
      }),
    });
    expect(n?.name).toBe("z2mhaFailoverStarted");
    expect(n?.values.z2mhaNewActiveNode).toBe("node3");
  });

  it("reports a succeeded switchover with outcome and duration, preferring the result's nodes", () => {
    const n = new NotificationMapper("home").map({
      type: "operation.finished",
      operation: operation({
        status: "succeeded",
        duration_ms: 42_100,
        params: { to: "node2" },
        result: { from: "node1", to: "node2" },
      }),
    });
    expect(n?.name).toBe("z2mhaSwitchoverSucceeded");
    expect(n?.values).toMatchObject({
      z2mhaPreviousActiveNode: "node1",
      z2mhaNewActiveNode: "node2",
      z2mhaOperationOutcome: "succeeded",
      z2mhaOperationDuration: 42_100,
      z2mhaOperationStep: "",
      z2mhaMessage: "switchover from node1 to node2 succeeded in 42.1s, node2 is active",
    });
  });

  it("reports a rolled-back switchover as failed, naming the step and the error", () => {
    const n = new NotificationMapper("home").map({
      type: "operation.finished",
      operation: operation({
        status: "rolled_back",
        started_at: "2026-11-26T10:00:00.000Z",
        finished_at: "2026-11-26T10:01:30.000Z",
        error: { step: "nvram-write", message: "nvram_write exited with 1" },
      }),
    });
    expect(n?.name).toBe("z2mhaSwitchoverFailed");
    expect(n?.values).toMatchObject({
      z2mhaOperationStep: "nvram-write",
      z2mhaOperationOutcome: "rolledBack",
      z2mhaOperationDuration: 90_000,
      z2mhaMessage:
        "switchover from node1 to node2 failed at step nvram-write: nvram_write exited with 1; rolled back, node1 is active again",
    });
    expect(n?.prototype.scriptStatus).toBe("ERR");
  });

  it("shortens a long error (a tool's output) so the outcome still fits the 255-byte message", () => {
    const output = `nvram_read exited with 1\nTraceback (most recent call last):\n${'  File "/opt/venv/zigpy_znp/api.py", line 42, in connect — ü\n'.repeat(10)}`;
    const n = new NotificationMapper("home").map({
      type: "operation.finished",
      operation: operation({ status: "rolled_back", error: { step: "preflight node2", message: output } }),
    });
    const message = n?.values.z2mhaMessage as string;
    expect(Buffer.byteLength(message)).toBeLessThanOrEqual(255);
    expect(message).toMatch(
      /^switchover from node1 to node2 failed at step preflight node2: nvram_read exited with 1 Traceback \(most recent call last\): File .*\.\.\.; rolled back, node1 is active again$/,
    );
    expect(message).not.toContain("\n");
  });

  it("finds the failed step among the steps when the error names none, ignoring rollback steps", () => {
    const n = new NotificationMapper("home").map({
      type: "operation.finished",
      operation: operation({
        kind: "failover",
        status: "failed",
        error: { message: "boom" },
        steps: [
          { key: "fence", name: "fence", status: "succeeded", started_at: "x" },
          { key: "restore", name: "restore", status: "failed", started_at: "x" },
          { key: "restart-old", name: "restart-old", status: "failed", started_at: "x", rollback: true },
        ],
      }),
    });
    expect(n?.name).toBe("z2mhaFailoverFailed");
    expect(n?.values.z2mhaOperationStep).toBe("restore");
    expect(n?.values.z2mhaOperationOutcome).toBe("failed");
  });

  it("reports an interrupted failover with the step that was running", () => {
    const n = new NotificationMapper("home").map({
      type: "operation.finished",
      operation: operation({
        kind: "failover",
        status: "interrupted",
        steps: [{ key: "start-new", name: "start-new", status: "running", started_at: "x" }],
      }),
    });
    expect(n?.values.z2mhaOperationOutcome).toBe("interrupted");
    expect(n?.values.z2mhaOperationStep).toBe("start-new");
    expect(n?.values.z2mhaMessage).toMatch(/was interrupted at step start-new/);
  });

  it("names the active node as a sync's source when the operation does not", () => {
    const mapper = new NotificationMapper("home");
    mapper.map({ type: "state.changed", state: state(true, false, "node2") });
    const ok = mapper.map({
      type: "operation.finished",
      operation: operation({ kind: "sync", status: "succeeded", duration_ms: 3_200, params: {} }),
    });
    expect(ok?.name).toBe("z2mhaSyncSucceeded");
    expect(ok?.values).toMatchObject({ z2mhaNodeId: "node2", z2mhaOperationDuration: 3_200 });
    expect(ok?.values.z2mhaMessage).toBe("sync from node2 succeeded in 3.2s");
    const failed = mapper.map({
      type: "operation.finished",
      operation: operation({
        kind: "sync",
        status: "failed",
        params: {},
        error: { step: "rsync", message: "disk full" },
      }),
    });
    expect(failed?.name).toBe("z2mhaSyncFailed");
    expect(failed?.values.z2mhaOperationStep).toBe("rsync");
    expect(failed?.prototype).toEqual({ scriptName: "z2m-ha sync", scriptStatus: "ERR" });
  });

  it("sends nothing for sync starts, other kinds, running operations and steps", () => {
    const mapper = new NotificationMapper("home");
    expect(mapper.map({ type: "operation.started", operation: operation({ kind: "sync" }) })).toBeUndefined();
    expect(
      mapper.map({ type: "operation.finished", operation: operation({ kind: "check", status: "failed" }) }),
    ).toBeUndefined();
    expect(
      mapper.map({ type: "operation.finished", operation: operation({ status: "running" }) }),
    ).toBeUndefined();
    expect(
      mapper.map({
        type: "operation.step",
        operation_id: "op-1",
        kind: "switchover",
        step: { key: "stop", name: "stop", status: "failed", started_at: "x" },
      }),
    ).toBeUndefined();
  });
});

describe("NotificationMapper: nodes, split brain, automation", () => {
  it("reports reachability only when it flips, per node", () => {
    const mapper = new NotificationMapper("home");
    expect(mapper.map({ type: "node.changed", node: node("node2", true) })).toBeUndefined();
    expect(mapper.map({ type: "node.changed", node: node("node2", true) })).toBeUndefined();
    const down = mapper.map({ type: "node.changed", node: node("node2", false, "ssh: connect timed out") });
    expect(down?.name).toBe("z2mhaNodeUnreachable");
    expect(down?.values.z2mhaNodeId).toBe("node2");
    expect(down?.values.z2mhaMessage).toBe("node node2 is unreachable: ssh: connect timed out");
    expect(down?.prototype).toEqual({ scriptName: "z2m-ha node", scriptStatus: "ERR" });
    expect(mapper.map({ type: "node.changed", node: node("node2", false) })).toBeUndefined();
    expect(mapper.map({ type: "node.changed", node: node("node1", true) })).toBeUndefined();
    expect(mapper.map({ type: "node.changed", node: node("node2", null) })).toBeUndefined();
    const up = mapper.map({ type: "node.changed", node: node("node2", true) });
    expect(up?.name).toBe("z2mhaNodeReachable");
    expect(up?.prototype.scriptStatus).toBe("OK");
  });

  it("reports a node first seen unreachable, and uses the event's previous health when it has no memory", () => {
    const mapper = new NotificationMapper("home");
    expect(mapper.map({ type: "node.changed", node: node("node1", false) })?.name).toBe(
      "z2mhaNodeUnreachable",
    );
    expect(
      mapper.map({ type: "node.changed", node: node("node3", true), previous: "unreachable" })?.name,
    ).toBe("z2mhaNodeReachable");
  });

  it("reports split brain once until the alert is cleared", () => {
    const mapper = new NotificationMapper("home");
    const alert = {
      kind: "split_brain" as const,
      severity: "critical" as const,
      message: "node1 and node2 both run zigbee2mqtt",
      node: "node1",
      at: "x",
    };
    const n = mapper.map({ type: "alert.raised", alert });
    expect(n?.name).toBe("z2mhaSplitBrainDetected");
    expect(n?.values).toMatchObject({ z2mhaNodeId: "node1", z2mhaMessage: alert.message });
    expect(mapper.map({ type: "alert.raised", alert })).toBeUndefined();
    mapper.map({ type: "alert.cleared", alert: { kind: "split_brain", node: "node1", at: "y" } });
    expect(mapper.map({ type: "alert.raised", alert })?.name).toBe("z2mhaSplitBrainDetected");
    expect(mapper.map({ type: "alert.raised", alert: { ...alert, kind: "clock_skew" } })).toBeUndefined();
  });

  it("reports the first automation change when given the state at start-up", () => {
    const mapper = new NotificationMapper("home", state(true, false, "node2"));
    expect(mapper.map({ type: "state.changed", state: state(false, false, "node2") })?.name).toBe(
      "z2mhaAutomationPaused",
    );
    const sync = mapper.map({
      type: "operation.finished",
      operation: operation({ kind: "sync", status: "succeeded", params: {} }),
    });
    expect(sync?.values.z2mhaNodeId).toBe("node2");
  });

  it("reports automation paused and resumed from flips of either flag, not the first state", () => {
    const mapper = new NotificationMapper("home");
    expect(mapper.map({ type: "state.changed", state: state(true, false) })).toBeUndefined();
    expect(mapper.map({ type: "state.changed", state: state(true, false, "node2") })).toBeUndefined();

    const off = mapper.map({ type: "state.changed", state: state(false, false) });
    expect(off?.name).toBe("z2mhaAutomationPaused");
    expect(off?.values).toMatchObject({ z2mhaAutomaticFailover: false, z2mhaMaintenanceMode: false });
    expect(off?.values.z2mhaMessage).toBe(
      "automation paused: automatic failover turned off (now automatic failover off, maintenance off)",
    );

    const on = mapper.map({ type: "state.changed", state: state(true, false) });
    expect(on?.name).toBe("z2mhaAutomationResumed");

    const maintenance = mapper.map({ type: "state.changed", state: state(true, true) });
    expect(maintenance?.name).toBe("z2mhaAutomationPaused");
    expect(maintenance?.values.z2mhaMaintenanceMode).toBe(true);

    // Leaving maintenance while turning automatic failover off leaves the automation paused.
    const swap = mapper.map({ type: "state.changed", state: state(false, false) });
    expect(swap?.name).toBe("z2mhaAutomationPaused");
    expect(swap?.values.z2mhaMessage).toMatch(/automatic failover turned off, maintenance mode left/);

    const back = mapper.map({ type: "state.changed", state: state(true, false) });
    expect(back?.name).toBe("z2mhaAutomationResumed");
    expect(back?.prototype).toEqual({ scriptName: "z2m-ha automation", scriptStatus: "OK" });
  });
});
