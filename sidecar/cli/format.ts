import type { ClusterStatus, NodeDetail, OperationRecord, SnapshotInfo } from "../types.js";

function ago(iso: string | undefined | null, now = Date.now()): string {
  if (!iso) return "never";
  const s = Math.round((now - Date.parse(iso)) / 1000);
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ago`;
  return `${Math.floor(s / 86400)}d ago`;
}

function ms(value: number | undefined): string {
  if (value === undefined) return "";
  return value < 1000 ? `${value}ms` : `${(value / 1000).toFixed(1)}s`;
}

function yesNo(value: boolean | null): string {
  return value === null ? "?" : value ? "yes" : "no";
}

export function formatStatus(s: ClusterStatus): string {
  const lines = [
    `cluster      ${s.cluster_name}`,
    `active       ${s.active ?? "(none)"}`,
    `protected    ${s.protection.protected ? "yes" : "NO"}: ${s.protection.reason}`,
    `bridge       ${s.bridge.state}${s.bridge.publishing_node ? ` (from ${s.bridge.publishing_node})` : ""}${s.bridge.broker_connected ? "" : " — controller cannot see the broker"}`,
    `automation   automatic failover ${s.automation.automatic_failover ? "on" : "off"}${s.automation.maintenance ? ", MAINTENANCE" : ""}`,
    `last sync    ${ago(s.last_sync?.at)}`,
    `last switch  ${s.last_switchover ? `${ago(s.last_switchover.at)} (${s.last_switchover.kind} ${s.last_switchover.from ?? "?"} → ${s.last_switchover.to})` : "never"}`,
    "",
    "NODE          ROLE     HEALTH              REACHABLE  Z2M  REASON",
  ];
  for (const n of s.nodes) {
    lines.push(
      `${n.id.padEnd(13)} ${n.role.padEnd(8)} ${n.health.padEnd(19)} ${yesNo(n.reachable).padEnd(10)} ${yesNo(n.zigbee2mqtt_running).padEnd(4)} ${n.reason}`,
    );
  }
  if (s.running_operation) lines.push("", `running      ${formatOperationLine(s.running_operation)}`);
  if (s.alerts.length) {
    lines.push("", "ALERTS");
    for (const a of s.alerts)
      lines.push(`  [${a.severity}] ${a.kind}${a.node ? ` ${a.node}` : ""}: ${a.message}`);
  }
  return lines.join("\n");
}

export function formatNode(n: NodeDetail): string {
  const lines = [
    `node         ${n.id} (${n.host})`,
    `role         ${n.role}`,
    `health       ${n.health}: ${n.reason}`,
    `data dir     ${n.data_dir}`,
    `staging dir  ${n.staging_dir}`,
    `coordinator  ${n.coordinator_port}`,
  ];
  for (const c of n.checks)
    lines.push(`  ${c.ok ? "ok  " : "FAIL"} ${c.name}${c.detail ? `: ${c.detail}` : ""}`);
  return lines.join("\n");
}

export function formatOperationLine(op: OperationRecord): string {
  return `${op.id}  ${op.kind.padEnd(10)} ${op.status.padEnd(11)} ${ms(op.duration_ms).padStart(7)}  ${op.started_at}${op.error ? `  ${op.error.step ? `[${op.error.step}] ` : ""}${op.error.message}` : ""}`;
}

export function formatStep(step: OperationRecord["steps"][number]): string {
  const mark = { running: "…", succeeded: "✔", failed: "✘", skipped: "-", interrupted: "!" }[step.status];
  return `  ${mark} ${step.rollback ? "(rollback) " : ""}${step.name}${step.duration_ms !== undefined ? ` ${ms(step.duration_ms)}` : ""}${step.detail ? ` — ${step.detail}` : ""}${step.error ? ` — ${step.error}` : ""}`;
}

export function formatOperation(op: OperationRecord): string {
  const lines = [formatOperationLine(op)];
  if (op.reason) lines.push(`  reason: ${op.reason}`);
  for (const step of op.steps) lines.push(formatStep(step));
  if (op.last_completed_step) lines.push(`  last completed step: ${op.last_completed_step}`);
  if (op.error?.output) lines.push("  output:", ...op.error.output.split("\n").map((l) => `    ${l}`));
  if (op.result) lines.push(`  result: ${JSON.stringify(op.result)}`);
  return lines.join("\n");
}

export function formatSnapshots(list: SnapshotInfo[]): string {
  if (list.length === 0) return "no snapshots";
  return [
    "ID                                   KIND   NODE      CREATED                   FILES  BYTES      PINNED",
    ...list.map(
      (s) =>
        `${s.id.padEnd(36)} ${s.kind.padEnd(6)} ${s.node.padEnd(9)} ${s.created_at.padEnd(25)} ${String(s.files ?? "").padEnd(6)} ${String(s.bytes).padEnd(10)} ${s.pinned ? "yes" : ""}`,
    ),
  ].join("\n");
}
