import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { checkPlainPath } from "./files.js";
import { type HostExec, pidfileAlive, stopPidfile, tcpOpen } from "./hosts.js";
import type { Layout } from "./layout.js";
import { SYSTEM_PYTHON } from "./namespaces.js";
import { lastLines, waitFor } from "./run.js";

const here = dirname(fileURLToPath(import.meta.url));
const TRAP_HANDLER = join(here, "trap-log.py");

export const MQTT_PORT = 1883;
export const SNMP_TRAP_PORT = 162;

export interface ControllerAddresses {
  lab: string;
  linkLocal: string;
}

export function mosquittoConfig(layout: Layout, addresses: ControllerAddresses): string {
  const c = layout.controller;
  return [
    "# Mosquitto of the lab controller (written by the zigbee2mqtt-ha lab)",
    `pid_file ${c.mosquittoPid}`,
    // Stay root: the run dir is root's, and nothing here faces a real network.
    "user root",
    // Retained messages (bridge/state, bridge/info) survive a broker restart, as with a stock Mosquitto.
    "persistence true",
    `persistence_location ${c.dir}/`,
    "persistence_file mosquitto.db",
    `log_dest file ${c.mosquittoLog}`,
    "log_type error",
    "log_type warning",
    "log_type notice",
    "log_type information",
    "connection_messages true",
    "log_timestamp_format %Y-%m-%dT%H:%M:%S",
    "per_listener_settings false",
    "allow_anonymous true",
    `listener ${MQTT_PORT} 127.0.0.1`,
    `listener ${MQTT_PORT} ${addresses.lab}`,
    `listener ${MQTT_PORT} ${addresses.linkLocal}`,
    "",
  ].join("\n");
}

export function snmptrapdConfig(layout: Layout): string {
  return [
    "# snmptrapd of the lab controller (written by the zigbee2mqtt-ha lab)",
    "disableAuthorization yes",
    `traphandle default ${SYSTEM_PYTHON} ${checkPlainPath(TRAP_HANDLER)} ${checkPlainPath(layout.controller.trapJson)}`,
    "",
  ].join("\n");
}

export function writeControllerConfigs(layout: Layout, addresses: ControllerAddresses): void {
  writeFileSync(layout.controller.mosquittoConf, mosquittoConfig(layout, addresses));
  writeFileSync(layout.controller.snmptrapdConf, snmptrapdConfig(layout));
  for (const file of [layout.controller.trapLog, layout.controller.trapJson]) {
    if (!existsSync(file)) writeFileSync(file, "");
  }
}

export async function startMosquitto(exec: HostExec, layout: Layout, addresses: ControllerAddresses) {
  if (await pidfileAlive(exec, "controller", layout.controller.mosquittoPid)) return;
  const result = await exec("controller", ["mosquitto", "-d", "-c", layout.controller.mosquittoConf]);
  if (result.code !== 0)
    throw new Error(
      `mosquitto did not start: ${result.stderr.trim() || lastLines(layout.controller.mosquittoLog)}`,
    );
  await waitFor("mosquitto to listen", async () =>
    (await tcpOpen(exec, "controller", addresses.linkLocal, MQTT_PORT)) ? true : undefined,
  );
}

export async function stopMosquitto(exec: HostExec, layout: Layout) {
  await stopPidfile(exec, "controller", layout.controller.mosquittoPid, "mosquitto");
}

export async function startSnmptrapd(
  exec: HostExec,
  layout: Layout,
  addresses: ControllerAddresses,
  repo: string,
) {
  const c = layout.controller;
  if (await pidfileAlive(exec, "controller", c.snmptrapdPid)) return;
  const mibArgs = mibOptions(repo);
  const result = await exec("controller", [
    "snmptrapd",
    "-C",
    "-c",
    c.snmptrapdConf,
    "-Lf",
    c.trapLog,
    "-p",
    c.snmptrapdPid,
    ...mibArgs,
    `udp:${addresses.lab}:${SNMP_TRAP_PORT},udp:${addresses.linkLocal}:${SNMP_TRAP_PORT}`,
  ]);
  if (result.code !== 0)
    throw new Error(`snmptrapd did not start: ${result.stderr.trim() || lastLines(c.trapLog)}`);
  await waitFor("snmptrapd to run", async () =>
    (await pidfileAlive(exec, "controller", c.snmptrapdPid)) ? true : undefined,
  );
}

/**
 * snmptrapd's MIB options: the repo's MIBs (so traps are logged with names) on top of the
 * standard SNMPv2 modules, which Debian does not ship (licence); the net-snmp npm package does.
 */
export function mibOptions(repo: string): string[] {
  const own = join(repo, "mibs");
  const standard = join(repo, "node_modules", "net-snmp", "lib", "mibs");
  if (!existsSync(own) || !existsSync(standard)) return [];
  const modules = readdirSync(own)
    .map(
      (file) =>
        /^\s*([A-Za-z][A-Za-z0-9-]*)\s+DEFINITIONS\s*::=\s*BEGIN/m.exec(
          readFileSync(join(own, file), "utf8"),
        )?.[1],
    )
    .filter((module): module is string => module !== undefined);
  return ["-M", `+${standard}:${own}`, "-m", ["SNMPv2-MIB", ...modules].join(":")];
}
