/**
 * `z2m-ha addon run`: the Home Assistant add-on's entry point (addon/rootfs/.../run). It reads
 * /data/options.json, makes the SSH key in /data on first start and logs its public half (the
 * line for the nodes' authorized_keys), finds the broker through the Supervisor when the options
 * name none, writes /data/config.yaml, serves it, and once the API listens announces itself to
 * Home Assistant (Supervisor discovery) with its URL, token and instance id.
 * `z2m-ha addon render` does the config part alone (for checks and for support).
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Command } from "commander";
import { loadConfig } from "../config/load.js";
import { startSidecar } from "../server.js";
import { loadOrCreateInstanceId } from "../store/state.js";
import {
  type AddonOptions,
  AddonOptionsError,
  parseAddonOptions,
  renderAddonConfig,
  type SupervisorMqtt,
} from "./addon-options.js";
import { CliError } from "./client.js";
import { ensureControllerKey } from "./init.js";
import { Supervisor } from "./supervisor.js";

export interface AddonPaths {
  data: string;
  options: string;
  config: string;
  key: string;
  stateDir: string;
}

export function addonPaths(data = process.env.Z2MHA_ADDON_DATA ?? "/data"): AddonPaths {
  return {
    data,
    options: join(data, "options.json"),
    config: join(data, "config.yaml"),
    key: join(data, "ssh", "id_ed25519"),
    stateDir: join(data, "state"),
  };
}

function readOptions(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    throw new CliError(`cannot read the add-on's options ${path}: ${(error as Error).message}`, 2);
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new CliError(`${path} is not JSON: ${(error as Error).message}`, 2);
  }
}

/** The validated options; bad ones are a usage error (exit 2) naming each option and its problem. */
export function loadAddonOptions(path: string): AddonOptions {
  try {
    return parseAddonOptions(readOptions(path));
  } catch (error) {
    if (error instanceof AddonOptionsError) throw new CliError(error.message, 2);
    throw error;
  }
}

/** options.json → config.yaml in /data (0600: it holds the broker password); returns its path. */
export function writeAddonConfig(paths: AddonPaths, supervisorMqtt?: SupervisorMqtt, port?: number): string {
  let text: string;
  try {
    const options = loadAddonOptions(paths.options);
    text = renderAddonConfig(options, {
      privateKey: paths.key,
      stateDir: paths.stateDir,
      ...(supervisorMqtt ? { supervisorMqtt } : {}),
      ...(port ? { port } : {}),
    });
  } catch (error) {
    if (error instanceof AddonOptionsError) throw new CliError(error.message, 2);
    throw error;
  }
  writeFileSync(paths.config, text, { mode: 0o600 });
  return paths.config;
}

const log = (line: string) => process.stdout.write(`[zigbee2mqtt-ha] ${line}\n`);

async function run(paths: AddonPaths, port: number): Promise<void> {
  const token = process.env.SUPERVISOR_TOKEN;
  const supervisor = token
    ? new Supervisor(token, process.env.Z2MHA_SUPERVISOR_URL ?? "http://supervisor")
    : undefined;
  if (!supervisor) log("no SUPERVISOR_TOKEN: not running as an add-on; no MQTT service lookup, no discovery");

  const key = ensureControllerKey(paths.key);
  log(
    `${key.created ? "generated the add-on's SSH key" : "the add-on's SSH key"}; on every node add this line to ~<ssh_user>/.ssh/authorized_keys (docs/nodes.md):`,
  );
  log(`restrict ${key.publicKey}`);

  const options = loadAddonOptions(paths.options);
  const mqtt = !options.mqtt.url && supervisor ? await supervisor.mqtt() : undefined;
  if (mqtt) log(`MQTT broker from the Supervisor: ${mqtt.host}:${mqtt.port}`);
  const file = writeAddonConfig(paths, mqtt, port);
  const config = loadConfig(file);
  const sidecar = await startSidecar(config);

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log(`received ${signal}, shutting down`);
    const force = setTimeout(() => process.exit(1), 15_000);
    force.unref();
    sidecar.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));

  if (supervisor) await announce(supervisor, config.server.port, sidecar.token, config.state_dir);
}

/**
 * Supervisor discovery, retried: Home Assistant may start after the add-on (the Supervisor keeps
 * the message until it asks), and a Supervisor that does not answer must not take the running
 * sidecar down with it.
 */
async function announce(
  supervisor: Supervisor,
  port: number,
  token: string,
  stateDir: string,
): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      const url = `http://${await supervisor.hostname()}:${port}`;
      const uuid = await supervisor.discover({ url, token, instance_id: loadOrCreateInstanceId(stateDir) });
      log(`announced to Home Assistant as ${url} (discovery ${uuid})`);
      return;
    } catch (error) {
      if (attempt >= 5) {
        log(`could not announce to Home Assistant: ${(error as Error).message}; add the integration by hand`);
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, 2_000 * attempt));
    }
  }
}

export function addonCommand(): Command {
  const addon = new Command("addon").description("the Home Assistant add-on's entry points");
  addon
    .command("render")
    .description("write the sidecar config from the add-on's options.json (no Supervisor needed)")
    .option("--data <dir>", "the add-on's data dir", process.env.Z2MHA_ADDON_DATA ?? "/data")
    .option("--options <file>", "options.json (default <data>/options.json)")
    .option("-o, --output <file>", "config to write (default <data>/config.yaml)")
    .action((opts: { data: string; options?: string; output?: string }) => {
      const paths = addonPaths(opts.data);
      const file = writeAddonConfig({
        ...paths,
        ...(opts.options ? { options: opts.options } : {}),
        ...(opts.output ? { config: opts.output } : {}),
      });
      process.stdout.write(`wrote ${file}\n`);
    });
  addon
    .command("run")
    .description("run as the add-on: key, options → config, the sidecar, Supervisor discovery")
    .option("--data <dir>", "the add-on's data dir", process.env.Z2MHA_ADDON_DATA ?? "/data")
    .option("--port <port>", "API port (config.yaml's watchdog and discovery expect 8485)", "8485")
    .action(async (opts: { data: string; port: string }) => {
      const port = Number(opts.port);
      if (!Number.isInteger(port) || port < 1 || port > 65535)
        throw new CliError("--port must be 1-65535", 2);
      await run(addonPaths(opts.data), port);
    });
  return addon;
}
