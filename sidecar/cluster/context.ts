import type { Logger } from "pino";
import type { Config, NodeConfig } from "../config/schema.js";
import type { Staging } from "../node/staging.js";
import type { ZigbeeNode } from "../node/zigbee-node.js";
import type { EventBus } from "../notify/bus.js";
import type { SnapshotStore } from "../store/snapshots.js";
import type { StateStore } from "../store/state.js";
import type { BridgeWatcher } from "../z2m/watcher.js";
import type { Alerts } from "./alerts.js";
import { NotFoundError } from "./errors.js";
import type { ClusterMetrics } from "./metrics.js";
import type { ArmingPreemption } from "./operations/standby.js";
import type { OperationRunner } from "./runner.js";

/** Everything an operation may use, built once at start-up. */
export interface ClusterContext {
  config: Config;
  logger: Logger;
  state: StateStore;
  runner: OperationRunner;
  bus: EventBus;
  alerts: Alerts;
  nodes: Map<string, ZigbeeNode>;
  staging: Map<string, Staging>;
  watcher: BridgeWatcher;
  snapshots: SnapshotStore;
  metrics: ClusterMetrics;
  /** Matches data-dir paths that are never copied (log/, ota/, configured patterns). */
  exclude: (relativePath: string) => boolean;
  /** Lets a wanted takeover stop a sync's arming of a standby (operations/standby.ts). */
  arming: ArmingPreemption;
  /** Whether monitoring already knows the node is unreachable (so operations fail fast). */
  unreachable: (id: string) => boolean;
}

export function nodeOf(cx: ClusterContext, id: string): ZigbeeNode {
  const node = cx.nodes.get(id);
  if (!node) throw new NotFoundError(`no node "${id}"`);
  return node;
}

export function stagingOf(cx: ClusterContext, id: string): Staging {
  const staging = cx.staging.get(id);
  if (!staging) throw new NotFoundError(`no node "${id}"`);
  return staging;
}

export function nodeConfig(cx: ClusterContext, id: string): NodeConfig {
  return nodeOf(cx, id).config;
}

/** The hosts by which bridge/info's frontend.host can name a node. */
export function frontendHostOf(node: NodeConfig): string {
  const override = node.overrides["frontend.host"];
  return typeof override === "string" ? override : node.ssh.host;
}
