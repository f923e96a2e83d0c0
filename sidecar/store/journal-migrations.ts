import type { OperationRecord } from "../types.js";

/**
 * Version 1 journals named steps only by their display text. Recovery and rollback now match
 * steps by stable keys; this maps the display texts version 1 wrote (with the operation's own
 * `from`/`to`, so "start node2" is told apart from "start node1 again") to the keys version 2
 * writes. Anything unknown gets a key made from its name: still stable, just not one recovery
 * looks for.
 */
export function legacyStepKey(
  name: string,
  op: Pick<OperationRecord, "kind" | "params">,
  rollback?: boolean,
): string {
  const from = typeof op.params.from === "string" ? op.params.from : undefined;
  const to = typeof op.params.to === "string" ? op.params.to : undefined;
  const node = typeof op.params.node === "string" ? op.params.node : undefined;
  const table: [string | undefined, string][] =
    op.kind === "switchover" || op.kind === "failover"
      ? [
          [to && `preflight ${to}`, "preflight"],
          [to && `make sure ${to} is stopped`, "ensure-target-stopped"],
          [from && `fence ${from}`, "fence-source"],
          [from && !rollback ? `stop ${from}` : undefined, "stop-source"],
          [from && `final sync from ${from}`, "final-sync"],
          [from && `read NVRAM on ${from}`, "read-source-nvram"],
          [from && `park the coordinator on ${from}`, "park-source"],
          [to && `reset NVRAM on ${to}`, "reset-target-nvram"],
          [to && `write NVRAM on ${to}`, "write-target-nvram"],
          [to && `verify NVRAM on ${to}`, "verify-target-nvram"],
          [to && `restore coordinator on ${to}`, "restore-target-coordinator"],
          [to && `verify coordinator on ${to}`, "verify-target-coordinator"],
          [to && `write data dir on ${to}`, "install-data-dir"],
          [to && !rollback ? `start ${to}` : undefined, "start-target"],
          [to && !rollback ? `wait for ${to} online` : undefined, "wait-target-online"],
          [to && `persist ${to} as active`, "persist-active"],
          [to && rollback ? `stop ${to}` : undefined, "rollback-stop-target"],
          [to && `retire the copy on ${to}`, "retire-target-copy"],
          [from && `raise the frame counter on ${from}`, "raise-source-counter"],
          [from && `start ${from} again`, "restart-source"],
          [from && rollback ? `wait for ${from} online` : undefined, "wait-source-online"],
        ]
      : op.kind === "fence"
        ? [
            [node && `stop zigbee2mqtt on ${node}`, "stop-stray"],
            [node && `park the coordinator on ${node}`, "park-stray"],
            ["look again", "look-again"],
            ["restore the active's bridge state", "restore-bridge-state"],
          ]
        : op.kind === "restart"
          ? [
              [node && `start ${node}`, "start"],
              [node && `wait for ${node} online`, "wait-online"],
            ]
          : [];
  for (const [text, key] of table) if (text !== undefined && text === name) return key;
  const stage = /^stage on (\S+)$/.exec(name);
  if (stage) return `stage:${stage[1]}`;
  return slug(name);
}

function slug(name: string): string {
  return (
    name
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, "-")
      .replace(/^-|-$/g, "")
      .slice(0, 64) || "step"
  );
}
