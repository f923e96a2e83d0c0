/**
 * What `z2m-ha init` learns from a node it can log in to, to propose that node's config: the
 * service manager, zigbee2mqtt's data dir and configuration.yaml (serial port and adapter,
 * frontend host, broker), the dongle's by-id path, a python that imports zigpy-znp, the home
 * directory for the staging dir. Read-only.
 */
import { posix } from "node:path";
import { parseDocument } from "yaml";
import type { ServiceManager } from "./service-manager.js";
import { isSshError } from "./ssh-errors.js";
import type { ExecResult } from "./ssh-exec.js";

export interface SurveyAccess {
  exec(argv: readonly string[], options?: { timeoutMs?: number }): Promise<ExecResult>;
  readFile(path: string, options?: { maxBytes?: number }): Promise<Buffer>;
}

export interface NodeSurvey {
  home: string;
  manager: ServiceManager | undefined;
  /** The data dir whose configuration.yaml was read, if one was found. */
  dataDir: string | undefined;
  /** Where it looked for one. */
  looked: string[];
  serialPort: string | undefined;
  /** The /dev/serial/by-id link naming serialPort's device, when serialPort is not one already. */
  byIdPort: string | undefined;
  adapter: string | undefined;
  frontendHost: string | undefined;
  mqttServer: string | undefined;
  mqttBaseTopic: string | undefined;
  mqttUser: string | undefined;
  /** coordinator.tools that run here, or undefined when no python imports zigpy_znp. */
  tools: string[] | undefined;
}

const PYTHONS = [["python3"], ["/opt/zigpy-znp/bin/python3"]];
const TIMEOUT = 30_000;

export async function surveyNode(
  node: SurveyAccess,
  options: { service: string; dataDir?: string },
): Promise<NodeSurvey> {
  const sh = (script: string, ...args: string[]) =>
    node.exec(["sh", "-c", script, "sh", ...args], { timeoutMs: TIMEOUT });
  const home = (await sh('printf "%s" "$HOME"')).stdout || "/";
  const managerOut = await sh(
    "if [ -x /sbin/rc-service ]; then echo openrc; elif [ -x /usr/bin/systemctl ] || [ -x /bin/systemctl ]; then echo systemd; fi",
  );
  const manager = (["openrc", "systemd"] as const).find((m) => m === managerOut.stdout.trim());

  let definition = "";
  if (manager === "openrc") definition = await readText(node, `/etc/init.d/${options.service}`);
  else if (manager === "systemd")
    definition = (await node.exec(["systemctl", "cat", options.service], { timeoutMs: TIMEOUT })).stdout;
  const fromService = /ZIGBEE2MQTT_DATA=["']?([^"'\s]+)/.exec(definition)?.[1];
  const installDir = /(\/[^\s"'=]*\/)index\.js\b/.exec(definition)?.[1];
  const candidates = [
    options.dataDir,
    fromService,
    installDir ? posix.join(installDir, "data") : undefined,
    "/opt/zigbee2mqtt/data",
    posix.join(home, "zigbee2mqtt", "data"),
    "/var/lib/zigbee2mqtt",
  ].filter((d): d is string => typeof d === "string" && d.startsWith("/"));
  const looked = [...new Set(candidates.map((d) => posix.normalize(d).replace(/\/$/, "")))];

  let dataDir: string | undefined;
  let settings: Z2mSettings = {};
  for (const dir of looked) {
    const text = await readText(node, posix.join(dir, "configuration.yaml"));
    if (!text) continue;
    const doc = parseDocument(text);
    if (doc.errors.length > 0) continue;
    dataDir = dir;
    settings = (doc.toJS() ?? {}) as Z2mSettings;
    break;
  }

  const serialPort = typeof settings.serial?.port === "string" ? settings.serial.port : undefined;
  let byIdPort: string | undefined;
  if (serialPort?.startsWith("/") && !serialPort.startsWith("/dev/serial/by-id/")) {
    const links = await sh(
      'p=$(readlink -f "$1"); for l in /dev/serial/by-id/*; do [ -e "$l" ] || continue; [ "$(readlink -f "$l")" = "$p" ] && echo "$l"; done; true',
      serialPort,
    );
    byIdPort = links.stdout.trim().split("\n").filter(Boolean)[0];
  }
  const frontend = settings.frontend;
  const frontendHost =
    typeof frontend === "object" && frontend !== null && typeof frontend.host === "string"
      ? frontend.host
      : undefined;

  let tools: string[] | undefined;
  for (const python of PYTHONS) {
    const imported = await node.exec([...python, "-c", "import zigpy_znp.tools.nvram_read"], {
      timeoutMs: 60_000,
    });
    if (imported.code === 0) {
      tools = [...python, "-m", "zigpy_znp.tools"];
      break;
    }
  }

  return {
    home,
    manager,
    dataDir,
    looked,
    serialPort,
    byIdPort,
    adapter: typeof settings.serial?.adapter === "string" ? settings.serial.adapter : undefined,
    frontendHost,
    mqttServer: typeof settings.mqtt?.server === "string" ? settings.mqtt.server : undefined,
    mqttBaseTopic: typeof settings.mqtt?.base_topic === "string" ? settings.mqtt.base_topic : undefined,
    mqttUser: typeof settings.mqtt?.user === "string" ? settings.mqtt.user : undefined,
    tools,
  };
}

interface Z2mSettings {
  serial?: { port?: unknown; adapter?: unknown };
  frontend?: { host?: unknown } | boolean | null;
  mqtt?: { server?: unknown; base_topic?: unknown; user?: unknown };
}

async function readText(node: SurveyAccess, path: string): Promise<string> {
  try {
    return (await node.readFile(path, { maxBytes: 1024 * 1024 })).toString("utf8");
  } catch (error) {
    if (isSshError(error, "sftp")) return "";
    throw error;
  }
}
