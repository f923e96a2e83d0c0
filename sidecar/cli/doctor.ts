/**
 * `z2m-ha doctor [--node N]`: runs every node check (sidecar/node/node-checks.ts) straight from
 * the config, without a running sidecar, and prints each problem with its fix. Exit status 0
 * when no check failed as an error (warnings allowed), 1 otherwise, 2 for a bad config or node.
 */
import { Command } from "commander";
import { configPath, loadConfig } from "../config/load.js";
import type { Config } from "../config/schema.js";
import { createLogger } from "../log.js";
import { type CheckResult, checkNode, hasErrors } from "../node/node-checks.js";
import { SshTransport } from "../node/ssh.js";
import { ZigbeeNode } from "../node/zigbee-node.js";
import { CliError } from "./client.js";

export interface DoctorReport {
  ok: boolean;
  nodes: Record<string, { ok: boolean; checks: CheckResult[] }>;
}

/** Checks the config's nodes (all, or those named), each over its own SSH connection, at once. */
export async function runDoctor(config: Config, only: readonly string[] = []): Promise<DoctorReport> {
  const unknown = only.filter((id) => !config.nodes.some((n) => n.id === id));
  if (unknown.length > 0)
    throw new CliError(
      `no node ${unknown.join(", ")} in the config (nodes: ${config.nodes.map((n) => n.id).join(", ")})`,
      2,
    );
  const nodes = config.nodes.filter((n) => only.length === 0 || only.includes(n.id));
  const logger = createLogger("silent");
  const checked = await Promise.all(
    nodes.map(async (n) => {
      // One connection attempt: doctor reports an unreachable node rather than waiting on it.
      const node = new ZigbeeNode(n, SshTransport.forNode(n, logger, { connectAttempts: 1 }), logger);
      try {
        return [n.id, await checkNode(node, { clockSkewWarnMs: config.monitor.clock_skew_warn })] as const;
      } finally {
        await node.close();
      }
    }),
  );
  const report: DoctorReport = { ok: true, nodes: {} };
  for (const [id, checks] of checked) {
    const ok = !hasErrors(checks);
    report.nodes[id] = { ok, checks };
    report.ok &&= ok;
  }
  return report;
}

export function formatDoctor(report: DoctorReport, config: Config): string {
  const lines: string[] = [];
  for (const [id, { checks }] of Object.entries(report.nodes)) {
    const node = config.nodes.find((n) => n.id === id);
    lines.push(`${id}  ${node ? `${node.ssh.user}@${node.ssh.host}:${node.ssh.port}` : ""}`);
    const width = Math.max(...checks.map((c) => c.id.length));
    for (const check of checks) {
      const mark = check.ok ? "ok  " : check.severity === "error" ? "FAIL" : "warn";
      lines.push(`  ${mark}  ${check.id.padEnd(width)}  ${check.detail}`);
      if (!check.ok && check.fix) {
        const [first, ...rest] = check.fix.split("\n");
        const pad = " ".repeat(width + 10);
        lines.push(`${pad}fix: ${first}`, ...rest.map((line) => `${pad}     ${line}`));
      }
    }
    const errors = checks.filter((c) => !c.ok && c.severity === "error").length;
    const warnings = checks.filter((c) => !c.ok && c.severity === "warning").length;
    lines.push(
      `  ${errors === 0 && warnings === 0 ? "all checks passed" : `${plural(errors, "error")}, ${plural(warnings, "warning")}`}`,
      "",
    );
  }
  lines.push(report.ok ? "no errors" : "errors found: fix them, then run z2m-ha doctor again");
  return lines.join("\n");
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

export function doctorCommand(globals: () => { config?: string; json?: boolean }): Command {
  return new Command("doctor")
    .description(
      "check each node for what the sidecar needs (ssh, sudo, tools, port, service, dirs, disk, clock, broker) and print the fix for each problem",
    )
    .option(
      "--node <id>",
      "check only this node (repeatable)",
      (value: string, previous: string[]) => [...previous, value],
      [] as string[],
    )
    .action(async (opts: { node: string[] }) => {
      const file = configPath(globals().config);
      if (!file) throw new CliError("no config: give --config FILE or set Z2MHA_CONFIG", 2);
      const config = loadConfig(file);
      const report = await runDoctor(config, opts.node);
      process.stdout.write(
        `${globals().json ? JSON.stringify(report, null, 2) : formatDoctor(report, config)}\n`,
      );
      if (!report.ok) process.exitCode = 1;
    });
}
