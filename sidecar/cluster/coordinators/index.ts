import type { ClusterContext } from "../context.js";
import { nodeOf } from "../context.js";
import type { CoordinatorDriver } from "./driver.js";
import { z2mBackup } from "./z2m-backup.js";
import { zstackNvram } from "./zstack-nvram.js";

export type { CoordinatorDriver, CoordinatorType } from "./driver.js";

const DRIVERS: Record<string, CoordinatorDriver> = {
  [zstackNvram.type]: zstackNvram,
  [z2mBackup.type]: z2mBackup,
};

/** The driver of a node's coordinator, by its `coordinator.type`. */
export function driverOf(cx: ClusterContext, node: string): CoordinatorDriver {
  const type = nodeOf(cx, node).config.coordinator.type ?? "zstack-nvram";
  const driver = DRIVERS[type];
  if (!driver) throw new Error(`no coordinator driver for type "${type}"`);
  return driver;
}
