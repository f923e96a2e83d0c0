import { Command, Option } from "commander";
import { ConfigError, configPath, loadConfig } from "../config/load.js";
import { startSidecar } from "../server.js";
import { StateDirLockedError } from "../store/lock.js";
import { StateFileError } from "../store/state.js";
import type { AutomationState, ClusterStatus, NodeDetail, OperationRecord, SnapshotInfo } from "../types.js";
import { VERSION } from "../version.js";
import { addonCommand } from "./addon.js";
import { ApiClient, CliError, type EndpointFlags, resolveEndpoint } from "./client.js";
import { doctorCommand } from "./doctor.js";
import {
  formatNode,
  formatOperation,
  formatOperationLine,
  formatSnapshots,
  formatStatus,
  formatStep,
} from "./format.js";
import { initCommand } from "./init.js";

interface GlobalFlags extends EndpointFlags {
  json?: boolean;
}

const program = new Command()
  .name("z2m-ha")
  .description("Active/standby high availability for zigbee2mqtt")
  .version(VERSION)
  .addOption(new Option("--url <url>", "sidecar API URL").env("Z2MHA_URL"))
  .addOption(new Option("--token <token>", "API token").env("Z2MHA_TOKEN"))
  .addOption(new Option("--token-file <file>", "file holding the API token").env("Z2MHA_TOKEN_FILE"))
  .addOption(
    new Option("--tls-fingerprint <sha256>", "pin the API's TLS certificate (SHA256:…)").env(
      "Z2MHA_TLS_FINGERPRINT",
    ),
  )
  .option("-c, --config <file>", "sidecar config (default $Z2MHA_CONFIG); also gives the URL and token")
  .option("--json", "machine-readable output")
  .showHelpAfterError();

function globals(): GlobalFlags {
  return program.opts<GlobalFlags>();
}

function client(): ApiClient {
  return new ApiClient(resolveEndpoint(globals()));
}

function print(value: unknown, human: () => string): void {
  process.stdout.write(`${globals().json ? JSON.stringify(value, null, 2) : human()}\n`);
}

const TERMINAL = new Set(["succeeded", "failed", "rolled_back", "interrupted"]);

/** Follows an operation until it ends, printing each step once it finishes; exit 1 unless it succeeded. */
async function follow(api: ApiClient, started: OperationRecord, wait: boolean): Promise<void> {
  if (!wait) {
    print(started, () => `started ${formatOperationLine(started)}`);
    return;
  }
  const json = globals().json;
  if (!json) process.stdout.write(`${started.kind} ${started.id} started\n`);
  let printed = 0;
  let op = started;
  while (!TERMINAL.has(op.status)) {
    await new Promise((r) => setTimeout(r, 500));
    op = await api.request<OperationRecord>("GET", `/api/v1/operations/${encodeURIComponent(op.id)}`);
    if (!json) {
      const done = op.steps.filter((s) => s.status !== "running");
      for (const step of done.slice(printed)) process.stdout.write(`${formatStep(step)}\n`);
      printed = done.length;
    }
  }
  if (json) process.stdout.write(`${JSON.stringify(op, null, 2)}\n`);
  else {
    process.stdout.write(
      `${op.kind} ${op.status}${op.duration_ms !== undefined ? ` in ${(op.duration_ms / 1000).toFixed(1)}s` : ""}\n`,
    );
    if (op.error)
      process.stdout.write(`error: ${op.error.step ? `[${op.error.step}] ` : ""}${op.error.message}\n`);
    if (op.error?.output) process.stdout.write(`${op.error.output}\n`);
  }
  if (op.status !== "succeeded") process.exitCode = 1;
}

program
  .command("serve")
  .description("run the sidecar (REST API, monitoring, automation) in the foreground")
  .action(async () => {
    const file = configPath(globals().config);
    if (!file) throw new CliError("no config: give --config FILE or set Z2MHA_CONFIG", 2);
    const config = loadConfig(file);
    // The token the CLI would send ($Z2MHA_TOKEN, --token) is the one the server expects, unless
    // the config sets one.
    const token = globals().token || undefined;
    const sidecar = await startSidecar(config, token ? { token } : {});
    if (sidecar.tlsFingerprint)
      process.stderr.write(
        `API certificate fingerprint (pin it in Home Assistant and the CLI): ${sidecar.tlsFingerprint}\n`,
      );
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      process.stderr.write(`received ${signal}, shutting down\n`);
      const force = setTimeout(() => process.exit(1), 15_000);
      force.unref();
      sidecar.close().then(
        () => process.exit(0),
        () => process.exit(1),
      );
    };
    process.on("SIGTERM", () => stop("SIGTERM"));
    process.on("SIGINT", () => stop("SIGINT"));
  });

const configCmd = program.command("config").description("configuration tools");
configCmd
  .command("check")
  .argument("[file]", "config file (default --config or $Z2MHA_CONFIG)")
  .description("validate a config file without starting anything")
  .action((file?: string) => {
    const path = file ?? configPath(globals().config);
    if (!path) throw new CliError("no config file given", 2);
    const config = loadConfig(path);
    print(
      { ok: true, file: path, nodes: config.nodes.map((n) => n.id) },
      () => `${path}: ok (${config.nodes.length} nodes: ${config.nodes.map((n) => n.id).join(", ")})`,
    );
  });

program.addCommand(initCommand(globals));
program.addCommand(addonCommand());
program.addCommand(doctorCommand(globals));

program
  .command("status")
  .description("show the active node, every node's health and the automation state")
  .action(async () => {
    const status = await client().request<ClusterStatus>("GET", "/api/v1/status");
    print(status, () => formatStatus(status));
  });

program
  .command("node")
  .argument("<id>", "node id")
  .description("show one node in detail")
  .action(async (id: string) => {
    const node = await client().request<NodeDetail>("GET", `/api/v1/nodes/${encodeURIComponent(id)}`);
    print(node, () => formatNode(node));
  });

function takeover(kind: "switchover" | "failover", description: string) {
  program
    .command(kind)
    .argument("[target]", "node to make active (default: the best ready standby)")
    .option("-r, --reason <text>", "why, for the history")
    .option("--no-wait", "return once started")
    .description(description)
    .action(async (target: string | undefined, opts: { reason?: string; wait: boolean }) => {
      const api = client();
      const started = await api.request<OperationRecord>("POST", `/api/v1/${kind}`, {
        ...(target ? { target } : {}),
        ...(opts.reason ? { reason: opts.reason } : {}),
      });
      await follow(api, started, opts.wait);
    });
}
takeover("switchover", "planned switchover: move the Zigbee network to another node");
takeover("failover", "unplanned takeover: fence the (dead) active node and restore on another");

program
  .command("sync")
  .option("--no-wait", "return once started")
  .description("copy the active node's data dir to every standby's staging dir now")
  .action(async (opts: { wait: boolean }) => {
    const api = client();
    await follow(api, await api.request<OperationRecord>("POST", "/api/v1/sync", {}), opts.wait);
  });

program
  .command("check")
  .option("--no-wait", "return once started")
  .description("preflight every node: ssh, sudo, tools, coordinator port, disk, clock")
  .action(async (opts: { wait: boolean }) => {
    const api = client();
    await follow(api, await api.request<OperationRecord>("POST", "/api/v1/check"), opts.wait);
  });

program
  .command("operations")
  .alias("ops")
  .argument("[id]", "one operation in detail")
  .option("-n, --limit <n>", "how many", "20")
  .description("operation history, newest first")
  .action(async (id: string | undefined, opts: { limit: string }) => {
    const api = client();
    if (id) {
      const op = await api.request<OperationRecord>("GET", `/api/v1/operations/${encodeURIComponent(id)}`);
      print(op, () => formatOperation(op));
      return;
    }
    const { operations } = await api.request<{ operations: OperationRecord[] }>(
      "GET",
      `/api/v1/operations?limit=${encodeURIComponent(opts.limit)}`,
    );
    print(operations, () =>
      operations.length ? operations.map(formatOperationLine).join("\n") : "no operations",
    );
  });

const onOff = (value: string): boolean => {
  if (["on", "true", "yes", "1"].includes(value)) return true;
  if (["off", "false", "no", "0"].includes(value)) return false;
  throw new CliError(`expected on or off, got "${value}"`, 2);
};

program
  .command("automation")
  .option("--automatic-failover <on|off>", "enable or disable automatic failover")
  .option("--maintenance <on|off>", "maintenance mode pauses all automation")
  .description("pause or resume automation")
  .action(async (opts: { automaticFailover?: string; maintenance?: string }) => {
    const patch: Partial<AutomationState> = {};
    if (opts.automaticFailover !== undefined) patch.automatic_failover = onOff(opts.automaticFailover);
    if (opts.maintenance !== undefined) patch.maintenance = onOff(opts.maintenance);
    if (Object.keys(patch).length === 0)
      throw new CliError("give --automatic-failover and/or --maintenance", 2);
    const result = await client().request<AutomationState>("PUT", "/api/v1/automation", patch);
    print(
      result,
      () =>
        `automatic failover ${result.automatic_failover ? "on" : "off"}, maintenance ${result.maintenance ? "on" : "off"}`,
    );
  });

program
  .command("maintenance")
  .argument("<on|off>")
  .description("shortcut for automation --maintenance")
  .action(async (value: string) => {
    const result = await client().request<AutomationState>("PUT", "/api/v1/automation", {
      maintenance: onOff(value),
    });
    print(result, () => `maintenance ${result.maintenance ? "on: nothing automatic will happen" : "off"}`);
  });

const snapshots = program.command("snapshots").description("snapshots kept by the controller");
snapshots
  .command("list", { isDefault: true })
  .description("list snapshots")
  .action(async () => {
    const { snapshots: list } = await client().request<{ snapshots: SnapshotInfo[] }>(
      "GET",
      "/api/v1/snapshots",
    );
    print(list, () => formatSnapshots(list));
  });
snapshots
  .command("restore")
  .argument("<id>", "data-dir snapshot id")
  .requiredOption("--node <id>", "standby whose staging dir receives it")
  .option("--no-wait", "return once started")
  .description("restore a data-dir snapshot into a standby's staging dir")
  .action(async (id: string, opts: { node: string; wait: boolean }) => {
    const api = client();
    const started = await api.request<OperationRecord>(
      "POST",
      `/api/v1/snapshots/${encodeURIComponent(id)}/restore`,
      {
        node: opts.node,
      },
    );
    await follow(api, started, opts.wait);
  });

program.parseAsync(process.argv).catch((error: unknown) => {
  if (
    error instanceof ConfigError ||
    error instanceof StateDirLockedError ||
    error instanceof StateFileError
  ) {
    process.stderr.write(`${error.message}\n`);
    process.exit(2);
  }
  if (error instanceof CliError) {
    process.stderr.write(`z2m-ha: ${error.message}\n`);
    process.exit(error.exitCode);
  }
  process.stderr.write(`z2m-ha: ${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
