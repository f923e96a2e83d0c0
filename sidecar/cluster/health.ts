import type { BridgeStatus, ClusterState, NodeHealth, NodeStatus } from "../types.js";
import type { NodeProbe } from "./probe.js";

export interface HealthInput {
  id: string;
  state: ClusterState;
  bridge: BridgeStatus;
  /** The last quick probe, and how many in a row failed. */
  quick: NodeProbe | undefined;
  failures: number;
  failureThreshold: number;
  /** The last thorough probe (tools, disk, clock, staged copy). */
  full: NodeProbe | undefined;
  latestSnapshotId: string | undefined;
  stagingMaxAgeMs: number;
  now: number;
}

export interface Readiness {
  ready: boolean;
  reasons: string[];
}

/**
 * Whether a switchover to this standby would succeed now: reachable, zigbee2mqtt stopped, a staged
 * copy of the latest snapshot not older than staging_max_age, tools and coordinator port present.
 */
export function standbyReadiness(input: HealthInput): Readiness {
  const reasons: string[] = [];
  const { quick, full, state, id } = input;
  if (!quick) return { ready: false, reasons: ["not probed yet"] };
  if (input.failures >= input.failureThreshold || !quick.reachable) reasons.push("unreachable");
  if (quick.service === "running") reasons.push("zigbee2mqtt is running");
  if (quick.service === "unknown")
    reasons.push(`service state unknown${quick.service_error ? `: ${quick.service_error}` : ""}`);
  if (quick.port_present === false) reasons.push("coordinator port missing");
  if (!full) reasons.push("tools not checked yet");
  else if (full.tools && !full.tools.ok)
    reasons.push(`${full.tools.what ?? "zigpy-znp tools"} not usable: ${full.tools.detail}`);
  const staged = state.staging?.[id];
  if (!staged) reasons.push("nothing staged yet");
  else {
    if (input.latestSnapshotId && staged.snapshot_id !== input.latestSnapshotId)
      reasons.push("staged copy is not the latest snapshot");
    const age = input.now - Date.parse(staged.at);
    if (age > input.stagingMaxAgeMs) reasons.push(`staged copy is ${Math.round(age / 60_000)} min old`);
  }
  if (state.fenced[id]) reasons.push("fenced");
  return { ready: reasons.length === 0, reasons };
}

/** The node's role, derived health and the reason, from probes, the bridge and the cluster state. */
export function deriveStatus(input: HealthInput): NodeStatus {
  const { id, state, bridge, quick, full } = input;
  const role = state.active === id ? "active" : "standby";
  const unreachable = input.failures >= input.failureThreshold;
  const base: NodeStatus = {
    id,
    role,
    health: "unknown",
    reason: "not probed yet",
    // One failed probe is not yet "unreachable": that takes `failureThreshold` in a row.
    reachable: quick ? !unreachable : null,
    zigbee2mqtt_running: quick?.service === "running" ? true : quick?.service === "stopped" ? false : null,
    coordinator_port_present: quick?.port_present ?? null,
    tools_present: full?.tools ? full.tools.ok : null,
    checks: [],
    ...(quick?.latency_ms !== undefined ? { latency_ms: quick.latency_ms } : {}),
    ...(full?.clock ? { clock_offset_ms: full.clock.offset_ms } : {}),
    ...(full?.free ? { free_bytes: full.free } : {}),
    ...(quick ? { checked_at: new Date(quick.at).toISOString() } : {}),
  };
  const staged = state.staging?.[id];
  base.staging_age_s = staged ? Math.round((input.now - Date.parse(staged.at)) / 1000) : null;
  if (!quick) return base;

  const set = (health: NodeHealth, reason: string): NodeStatus => ({ ...base, health, reason });
  const fence = state.fenced[id];
  if (fence && role !== "active") return set("fenced", `fenced: ${fence.reason}`);
  if (unreachable) {
    return set(
      "unreachable",
      `no answer over SSH ${input.failures} times in a row${quick.error ? `: ${quick.error}` : ""}`,
    );
  }
  if (role === "active") {
    if (quick.service === "stopped") {
      return set("active-down", quick.service_crashed ? "zigbee2mqtt crashed" : "zigbee2mqtt is not running");
    }
    if (!bridge.broker_connected) return set("active-degraded", "controller cannot see the MQTT broker");
    if (bridge.state === "offline") {
      return set(quick.service === "running" ? "active-degraded" : "active-down", "bridge/state is offline");
    }
    if (quick.port_present === false) return set("active-degraded", "coordinator port missing");
    if (quick.service === "unknown") return set("active-degraded", "service state unknown");
    if (bridge.publishing_node && bridge.publishing_node !== id) {
      return set("active-degraded", `bridge/info comes from ${bridge.publishing_node}`);
    }
    return set("active-healthy", "zigbee2mqtt online");
  }
  const readiness = standbyReadiness(input);
  return readiness.ready
    ? set("standby-ready", "ready to take over")
    : set("standby-not-ready", readiness.reasons.join("; "));
}
