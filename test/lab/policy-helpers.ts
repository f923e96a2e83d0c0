/**
 * What the lab tests of monitoring, automation and notifications read back from the real sidecar:
 * operations since a moment, decisions by name, node status, metrics.
 */
import type { ClusterStatus, NodeStatus, OperationKind, OperationRecord } from "../../sidecar/types.js";
import { FAULTS } from "./host/faults.js";
import type { SidecarApi } from "./sidecar-harness.js";
import type { HostId, Lab } from "./world.js";

export const startedAt = (op: OperationRecord): number => Date.parse(op.started_at);

/** Operations (of a kind) started at or after `since` (ms since the epoch), oldest first. */
export async function opsSince(
  api: SidecarApi,
  since: number,
  kind?: OperationKind,
): Promise<OperationRecord[]> {
  return (await api.operations(kind)).filter((o) => startedAt(o) >= since).reverse();
}

/** Policy or schedule decisions since `since` whose `result.decision` matches. */
export async function decisionsSince(
  api: SidecarApi,
  since: number,
  decision?: string | RegExp,
): Promise<OperationRecord[]> {
  return (await opsSince(api, since, "decision")).filter((d) => {
    const name = String(d.result?.decision ?? "");
    return decision === undefined || (typeof decision === "string" ? name === decision : decision.test(name));
  });
}

/** Waits for the first operation of `kind` since `since` that matches `accept` and has ended. */
export function waitForEnded(
  api: SidecarApi,
  kind: OperationKind,
  since: number,
  accept: (op: OperationRecord) => boolean = () => true,
  timeoutMs = 180_000,
): Promise<OperationRecord> {
  return api.waitFor(
    `a finished ${kind} operation`,
    async () => (await opsSince(api, since, kind)).find((o) => o.status !== "running" && accept(o)),
    timeoutMs,
  );
}

/** Waits for a decision (`result.decision` matching, and `accept`) since `since`. */
export function waitForDecision(
  api: SidecarApi,
  since: number,
  decision: string | RegExp,
  accept: (op: OperationRecord) => boolean = () => true,
  timeoutMs = 120_000,
): Promise<OperationRecord> {
  return api.waitFor(
    `a decision "${decision}"`,
    async () => (await decisionsSince(api, since, decision)).find(accept),
    timeoutMs,
  );
}

export function nodeIn(status: ClusterStatus, id: string): NodeStatus {
  const node = status.nodes.find((n) => n.id === id);
  if (!node) throw new Error(`no node ${id} in status`);
  return node;
}

export async function metricsText(api: SidecarApi): Promise<string> {
  const response = await fetch(`${api.url}/metrics`, { headers: { authorization: `Bearer ${api.token}` } });
  return response.text();
}

/** The value of one Prometheus sample (name and labels, in any order), 0 when absent. */
export function sample(text: string, name: string, labels: Record<string, string> = {}): number {
  for (const line of text.split("\n")) {
    if (!(line.startsWith(`${name}{`) || line.startsWith(`${name} `))) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) {
      return Number(line.slice(line.lastIndexOf(" ") + 1));
    }
  }
  return 0;
}

/** Waits until every standby is `standby-ready` (after a sync), returns that status. */
export async function waitForReadyStandbys(api: SidecarApi, timeoutMs = 60_000): Promise<ClusterStatus> {
  let last: ClusterStatus | undefined;
  try {
    return await api.waitForStatus(
      "every standby ready",
      (s) => {
        last = s;
        return (
          s.active !== null &&
          s.running_operation === null &&
          s.nodes.every((n) => n.id === s.active || n.health === "standby-ready")
        );
      },
      timeoutMs,
    );
  } catch (error) {
    // Say why not: each node's health and what its readiness lacks.
    const why = last?.nodes.map((n) => `${n.id} ${n.health} (${n.reason})`);
    throw new Error(
      `${(error as Error).message}: active ${last?.active}; ${why?.join("; ")}; ${last?.protection.reason}`,
    );
  }
}

/**
 * What a test file that moved the active around leaves behind for the files after it (some of the
 * lab's own tests take node1 running and the other nodes stopped for granted): the faults undone,
 * zigbee2mqtt stopped on every node but node1, node1's started if it is not running. Cheaper than
 * `baseline` (no dongle reset): node1's dongle and data dir still hold a network it can resume.
 */
export async function leaveNode1Active(lab: Lab): Promise<void> {
  for (const fault of (await lab.status()).faults) {
    const undo = FAULTS[fault.kind as keyof typeof FAULTS]?.undo;
    if (undo === `${fault.kind} --clear`) await lab.fault(fault.kind, fault.host as HostId, { clear: true });
    else if (undo) await lab.fault(undo, fault.host as HostId);
  }
  for (const id of lab.info.nodeIds) {
    if (id === "node1") continue;
    await lab.stopZigbee2mqtt(id);
    await lab.service(id, "zap");
  }
  if ((await lab.service("node1", "status")).code !== 0) {
    await lab.service("node1", "zap");
    await lab.startZigbee2mqtt("node1");
  }
}
