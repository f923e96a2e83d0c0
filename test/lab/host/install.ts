import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { simulatorEntry } from "./dongle.js";

/** Where the lab's real parts come from: this repository and what scripts/setup.sh installed. */
export const REPO = resolve(import.meta.dirname, "..", "..", "..");
export const CACHE = process.env.Z2MHA_CACHE ?? "/var/cache/zigbee2mqtt-ha";
export const Z2M_DIR = join(CACHE, "zigbee2mqtt");
export const Z2M_INDEX = join(Z2M_DIR, "node_modules", "zigbee2mqtt", "index.js");
export const ZNP_VENV = join(CACHE, "znp-venv");

export function z2mVersion(): string {
  try {
    const path = join(Z2M_DIR, "node_modules", "zigbee2mqtt", "package.json");
    return (JSON.parse(readFileSync(path, "utf8")) as { version: string }).version;
  } catch {
    return "unknown";
  }
}

/** Fails with everything that is missing at once, and what installs it. */
export function preflight(zigbee: boolean): void {
  if (process.getuid?.() !== 0) throw new Error("the lab needs root (network and mount namespaces)");
  const missing: string[] = [];
  const commands = [
    "/usr/sbin/sshd",
    "/usr/bin/ssh-keygen",
    "/usr/bin/rsync",
    "/usr/sbin/mosquitto",
    "/usr/sbin/snmptrapd",
    "/usr/bin/snmptrap",
    "/usr/bin/socat",
    "/usr/bin/sudo",
    "/usr/bin/nsenter",
    "/usr/bin/unshare",
    "/usr/bin/setpriv",
    "/usr/sbin/iptables",
    "/usr/bin/python3",
    "/usr/bin/curl",
  ];
  for (const command of commands) if (!existsSync(command)) missing.push(command);
  if (!existsSync(join(ZNP_VENV, "bin", "python3"))) missing.push(`${ZNP_VENV} (scripts/setup/30-znp.sh)`);
  if (zigbee) {
    if (!existsSync(Z2M_INDEX)) missing.push(`${Z2M_INDEX} (scripts/setup/40-z2m.sh)`);
    const sim = simulatorEntry(REPO);
    for (const file of [sim.tsx, sim.main]) if (!existsSync(file)) missing.push(file);
  }
  if (missing.length > 0) {
    throw new Error(
      `the lab cannot start; missing:\n  ${missing.join("\n  ")}\nrun scripts/setup.sh (as root) first`,
    );
  }
}
