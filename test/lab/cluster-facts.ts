/**
 * Facts about the lab's cluster read from the nodes themselves, without vitest: the lab tests use
 * them through takeover-checks.ts, the soak and chaos runs (test/bench) directly.
 */
import type { HostId, Lab } from "./world.js";

export type Nvram = Record<string, Record<string, string>>;

/** The nodes whose service manager says zigbee2mqtt is started (`rc-service zigbee2mqtt status`). */
export async function runningNodes(lab: Lab): Promise<string[]> {
  const running: string[] = [];
  for (const id of lab.info.nodeIds) {
    if ((await lab.service(id as HostId, "status")).code === 0) running.push(id);
  }
  return running;
}

/** Items whose value is the network frame counter: they differ between copies by design. */
export function isCounterItem(item: string): boolean {
  return item === "LEGACY.NWKKEY" || item.startsWith("NWK_SEC_MATERIAL_TABLE.");
}

/** Every item of `expected` that `actual` does not hold identically, frame counter items aside. */
export function nvramDifferences(expected: Nvram, actual: Nvram): string[] {
  const differences: string[] = [];
  for (const [section, items] of Object.entries(expected)) {
    for (const [key, value] of Object.entries(items)) {
      const item = `${section}.${key}`;
      if (!isCounterItem(item) && actual[section]?.[key] !== value) differences.push(item);
    }
  }
  return differences;
}

/** The z2m-backup driver's switchover steps, in order (docs/coordinators.md), "stage:" steps aside. */
export const Z2M_BACKUP_SWITCHOVER_STEPS = [
  "preflight",
  "ensure-target-stopped",
  "refresh-backup",
  "prepare-target-coordinator",
  "stop-source",
  "capture-source",
  "write-target-data",
  "start-target",
  "wait-target-online",
  "persist-active",
] as const;
