import type { ClusterEvent, ClusterState, NodeStatus, OperationRecord } from "../../sidecar/types.js";

function op(id: string, overrides: Partial<OperationRecord>): OperationRecord {
  return {
    id,
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

function nodeStatus(id: string, reachable: boolean): NodeStatus {
  return {
    id,
    role: "standby",
    health: reachable ? "standby-ready" : "unreachable",
    reason: reachable ? "ok" : "ssh: connect ETIMEDOUT",
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

/**
 * Events that make the notifier send each of its 13 notifications exactly once, in this order
 * (baseline events that send nothing included), with what the receiver should decode.
 */
export const EVERY_NOTIFICATION: Array<{
  event: ClusterEvent;
  expect?: { trap: string; varbinds: Record<string, string> };
}> = [
  { event: { type: "state.changed", state: state(true, false) } },
  { event: { type: "node.changed", node: nodeStatus("node2", true) } },
  {
    event: { type: "operation.started", operation: op("op-sw-1", {}) },
    expect: {
      trap: "z2mhaSwitchoverStarted",
      varbinds: {
        "z2mhaOperationId.0": "op-sw-1",
        "z2mhaPreviousActiveNode.0": "node1",
        "z2mhaNewActiveNode.0": "node2",
        "z2mhaMessage.0": "switchover from node1 to node2 started (api)",
      },
    },
  },
  {
    event: {
      type: "operation.finished",
      operation: op("op-sw-1", {
        status: "succeeded",
        duration_ms: 1500,
        result: { from: "node1", to: "node2" },
      }),
    },
    expect: {
      trap: "z2mhaSwitchoverSucceeded",
      varbinds: {
        "z2mhaNewActiveNode.0": "node2",
        "z2mhaOperationOutcome.0": "succeeded(1)",
        "z2mhaOperationDuration.0": "1500 milliseconds",
      },
    },
  },
  {
    event: {
      type: "operation.finished",
      operation: op("op-sw-2", {
        status: "rolled_back",
        duration_ms: 2500,
        params: { from: "node2", to: "node1" },
        error: { step: "nvram-write", message: "nvram_write exited with 1" },
      }),
    },
    expect: {
      trap: "z2mhaSwitchoverFailed",
      varbinds: {
        "z2mhaOperationStep.0": "nvram-write",
        "z2mhaOperationOutcome.0": "rolledBack(3)",
        "z2mhaPreviousActiveNode.0": "node2",
      },
    },
  },
  {
    event: {
      type: "operation.started",
      operation: op("op-fo-1", {
        kind: "failover",
        trigger: "policy",
        params: { from: "node2", to: "node1" },
      }),
    },
    expect: { trap: "z2mhaFailoverStarted", varbinds: { "z2mhaOperationId.0": "op-fo-1" } },
  },
  {
    event: {
      type: "operation.finished",
      operation: op("op-fo-1", {
        kind: "failover",
        status: "succeeded",
        duration_ms: 9000,
        params: { from: "node2", to: "node1" },
      }),
    },
    expect: {
      trap: "z2mhaFailoverSucceeded",
      varbinds: { "z2mhaNewActiveNode.0": "node1", "z2mhaOperationDuration.0": "9000 milliseconds" },
    },
  },
  {
    event: {
      type: "operation.finished",
      operation: op("op-fo-2", {
        kind: "failover",
        status: "failed",
        params: { from: "node1", to: "node2" },
        error: { step: "fence", message: "fence command failed" },
      }),
    },
    expect: {
      trap: "z2mhaFailoverFailed",
      varbinds: { "z2mhaOperationStep.0": "fence", "z2mhaOperationOutcome.0": "failed(2)" },
    },
  },
  {
    event: {
      type: "operation.finished",
      operation: op("op-sy-1", { kind: "sync", status: "succeeded", params: {}, duration_ms: 300 }),
    },
    expect: { trap: "z2mhaSyncSucceeded", varbinds: { "z2mhaNodeId.0": "node1" } },
  },
  {
    event: {
      type: "operation.finished",
      operation: op("op-sy-2", {
        kind: "sync",
        status: "failed",
        params: { source: "node1" },
        error: { step: "rsync", message: "No space left on device" },
      }),
    },
    expect: {
      trap: "z2mhaSyncFailed",
      varbinds: {
        "z2mhaOperationStep.0": "rsync",
        "z2mhaMessage.0": "sync from node1 failed at step rsync: No space left on device",
      },
    },
  },
  {
    event: { type: "node.changed", node: nodeStatus("node2", false), previous: "standby-ready" },
    expect: { trap: "z2mhaNodeUnreachable", varbinds: { "z2mhaNodeId.0": "node2" } },
  },
  {
    event: { type: "node.changed", node: nodeStatus("node2", true), previous: "unreachable" },
    expect: { trap: "z2mhaNodeReachable", varbinds: { "z2mhaNodeId.0": "node2" } },
  },
  {
    event: {
      type: "alert.raised",
      alert: {
        kind: "split_brain",
        severity: "critical",
        message: "node1 and node2 both run zigbee2mqtt",
        node: "node2",
        at: "2026-11-26T10:05:00.000Z",
      },
    },
    expect: { trap: "z2mhaSplitBrainDetected", varbinds: { "z2mhaNodeId.0": "node2" } },
  },
  {
    event: { type: "state.changed", state: state(true, true) },
    expect: {
      trap: "z2mhaAutomationPaused",
      varbinds: { "z2mhaAutomaticFailover.0": "true(1)", "z2mhaMaintenanceMode.0": "true(1)" },
    },
  },
  {
    event: { type: "state.changed", state: state(true, false) },
    expect: {
      trap: "z2mhaAutomationResumed",
      varbinds: { "z2mhaAutomaticFailover.0": "true(1)", "z2mhaMaintenanceMode.0": "false(2)" },
    },
  },
];

/** A switchover that succeeded: the one event most tests send. */
export const SWITCHOVER_SUCCEEDED: ClusterEvent = EVERY_NOTIFICATION[3]?.event as ClusterEvent;
