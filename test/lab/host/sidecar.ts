import { spawn } from "node:child_process";
import { existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parse, stringify } from "yaml";
import { MQTT_PORT, SNMP_TRAP_PORT } from "./controller.js";
import { SERVICE } from "./files.js";
import type { HostExec } from "./hosts.js";
import { REPO } from "./install.js";
import type { Layout } from "./layout.js";
import { enterArgv } from "./namespaces.js";
import { waitFor } from "./run.js";
import type { LabInfo } from "./state.js";

export interface RunningSidecar {
  url: string;
  token: string;
  configPath: string;
  logPath: string;
  /** The sidecar's stdout and stderr so far. */
  output(): string;
  /** SIGTERM (or `signal`) and wait for it to exit; resolves with its exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Deep merge for config overrides; `nodes` given as an object keyed by id merges into those nodes. */
export function mergeConfig(
  base: Record<string, unknown>,
  overrides: Record<string, unknown>,
): Record<string, unknown> {
  const result: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(overrides)) {
    const current = result[key];
    if (value === undefined) {
      delete result[key];
    } else if (key === "nodes" && Array.isArray(current) && isPlainObject(value)) {
      const unknown = Object.keys(value).filter(
        (id) => !current.some((n) => isPlainObject(n) && n.id === id),
      );
      if (unknown.length > 0) throw new Error(`sidecarConfig: no node ${unknown.join(", ")} to override`);
      result[key] = current.map((n) =>
        isPlainObject(n) && isPlainObject(value[n.id as string])
          ? mergeConfig(n, value[n.id as string] as Record<string, unknown>)
          : n,
      );
    } else if (isPlainObject(current) && isPlainObject(value)) {
      result[key] = mergeConfig(current, value);
    } else {
      result[key] = value;
    }
  }
  return result;
}

/** The sidecar config a user of this lab would write, as a plain object. */
export function labSidecarConfig(info: LabInfo, stateDir: string): Record<string, unknown> {
  return {
    cluster_name: `lab-${info.name}`,
    state_dir: stateDir,
    log_level: "info",
    server: { host: info.linkLocal.controller, port: 8485 },
    mqtt: { url: `mqtt://127.0.0.1:${MQTT_PORT}`, base_topic: "zigbee2mqtt" },
    nodes: info.nodeIds.map((id) => {
      const node = info.nodes[id]!;
      return {
        id,
        ssh: {
          host: node.address,
          port: node.ssh.port,
          user: node.ssh.user,
          private_key: info.ssh.privateKey,
          host_key: node.ssh.originalHostKeyFingerprint,
        },
        data_dir: node.dataDir,
        staging_dir: node.stagingDir,
        // No sudo for the tools: zigbee is in dialout (docs/nodes.md, least privilege). An
        // EmberZNet dongle moves with zigbee2mqtt's backup and the node tool (docs/coordinators.md).
        coordinator:
          node.adapter === "ember"
            ? { type: "z2m-backup", adapter: "ember", port: node.serialPort, tools: ["node"] }
            : { port: node.serialPort, tools: ["python3", "-m", "zigpy_znp.tools"] },
        service: {
          start: ["sudo", "rc-service", SERVICE, "start"],
          stop: ["sudo", "rc-service", SERVICE, "stop"],
          status: ["sudo", "rc-service", SERVICE, "status"],
        },
        overrides: { "frontend.host": node.address, "serial.port": node.serialPort },
      };
    }),
    snmp: {
      targets: [{ host: info.controller.address, port: SNMP_TRAP_PORT, version: "2c", community: "public" }],
    },
  };
}

let counter = 0;

/** Writes a generated config (with overrides) into a fresh directory under the controller's sidecar dir. */
export function writeSidecarConfig(
  info: LabInfo,
  layout: Layout,
  overrides: Record<string, unknown>,
): string {
  counter += 1;
  const dir = join(
    layout.controller.sidecarDir,
    `sidecar-${Date.now().toString(36)}-${process.pid}-${counter}`,
  );
  mkdirSync(dir, { recursive: true });
  const config = mergeConfig(labSidecarConfig(info, join(dir, "state")), overrides);
  const path = join(dir, "config.yaml");
  writeFileSync(path, `# sidecar config for lab ${info.name} (generated)\n${stringify(config)}`, {
    mode: 0o600,
  });
  return path;
}

/**
 * Starts `node dist/cli.js serve --config <configPath>` in the controller and waits until it answers
 * /healthz. Output goes to sidecar.log next to the config.
 */
export async function startSidecarInController(
  info: LabInfo,
  layout: Layout,
  exec: HostExec,
  configPath: string,
  { timeout = 30_000, env = {} }: { timeout?: number; env?: Record<string, string> } = {},
): Promise<RunningSidecar> {
  const config = parse(readFileSync(configPath, "utf8")) as {
    state_dir?: string;
    server?: { host?: string; port?: number; token?: string; token_file?: string };
  };
  const host = config.server?.host ?? "127.0.0.1";
  const url = `http://${host}:${config.server?.port ?? 8485}`;
  const dir = join(configPath, "..");
  const logPath = join(dir, "sidecar.log");
  const pidfile = join(dir, "sidecar.pid");
  const cli = join(REPO, "dist", "cli.js");
  if (!existsSync(cli)) throw new Error(`${cli} is missing: run npm run build`);
  const argv = enterArgv(
    layout,
    info.name,
    "controller",
    [
      "/bin/sh",
      "-c",
      'echo $$ >"$1"; shift; exec "$@"',
      "sh",
      pidfile,
      process.execPath,
      cli,
      "serve",
      "--config",
      configPath,
    ],
    { cwd: REPO, env },
  );
  const out = openSync(logPath, "a");
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ["ignore", out, out] });
  const exited = new Promise<number | null>((done) => child.on("exit", (code) => done(code)));
  const output = () => (existsSync(logPath) ? readFileSync(logPath, "utf8") : "");
  // Generated configs listen on the controller's link-local address, which the tests reach directly.
  const reachableFromRoot = host === info.linkLocal.controller;
  await waitFor(
    `the sidecar at ${url}`,
    async () => {
      if (child.exitCode !== null)
        throw new Error(`it exited with ${child.exitCode}:\n${output().slice(-3000)}`);
      // Ours, not a sidecar an earlier test left on the same port: it says so in its own log.
      if (!output().includes("sidecar listening")) return undefined;
      if (reachableFromRoot) {
        const response = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(2_000) });
        return response.ok ? true : undefined;
      }
      const probe = await exec("controller", ["curl", "-fsS", "-m", "2", `${url}/healthz`]);
      return probe.code === 0 ? true : undefined;
    },
    { timeout, interval: 200 },
  ).catch((error: Error) => {
    child.kill("SIGKILL");
    throw new Error(`the sidecar did not come up: ${error.message}`);
  });
  const tokenFile = config.server?.token_file ?? join(config.state_dir ?? "/var/lib/zigbee2mqtt-ha", "token");
  const token = config.server?.token ?? readFileSync(tokenFile, "utf8").trim();
  const stop = async (signal: NodeJS.Signals = "SIGTERM") => {
    if (child.exitCode === null && child.signalCode === null) {
      await exec("controller", [
        "/bin/sh",
        "-c",
        'pid=$(cat "$1") && kill "-$2" "$pid"',
        "sh",
        pidfile,
        signal.replace(/^SIG/, ""),
      ]);
    }
    return exited;
  };
  return { url, token, configPath, logPath, output, stop };
}
