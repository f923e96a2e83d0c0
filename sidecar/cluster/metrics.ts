import { Counter, Gauge, Histogram, type Registry } from "prom-client";
import type { EventBus } from "../notify/bus.js";
import type { NodeStatus, OperationRecord } from "../types.js";

/**
 * The cluster's Prometheus metrics, fed from the event bus so that no operation code needs to
 * know about them, plus the few values only the sync knows (bytes moved).
 */
export class ClusterMetrics {
  readonly operations: Counter<"kind" | "status">;
  readonly operationSeconds: Histogram<"kind">;
  readonly syncLastSuccess: Gauge;
  readonly syncLastDuration: Gauge;
  readonly syncLastBytes: Gauge;
  readonly syncBytes: Counter;
  readonly nodeUp: Gauge<"node">;
  readonly nodeLatency: Gauge<"node">;
  readonly nodeClockOffset: Gauge<"node">;
  readonly nodeFreeBytes: Gauge<"node" | "dir">;
  readonly nodeZ2mRunning: Gauge<"node">;
  readonly nodeHealthy: Gauge<"node" | "health">;
  readonly activeNode: Gauge<"node">;
  readonly bridgeOnline: Gauge;
  readonly brokerConnected: Gauge;
  readonly detectionSeconds: Histogram<"cause">;

  constructor(registry: Registry, nodeIds: string[]) {
    const registers = [registry];
    this.operations = new Counter({
      name: "z2mha_operations_total",
      help: "Operations finished, by kind and outcome",
      labelNames: ["kind", "status"],
      registers,
    });
    this.operationSeconds = new Histogram({
      name: "z2mha_operation_duration_seconds",
      help: "Duration of finished operations",
      labelNames: ["kind"],
      buckets: [0.1, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300],
      registers,
    });
    this.syncLastSuccess = new Gauge({
      name: "z2mha_sync_last_success_timestamp_seconds",
      help: "When the last successful sync ended (Unix time)",
      registers,
    });
    this.syncLastDuration = new Gauge({
      name: "z2mha_sync_last_duration_seconds",
      help: "Duration of the last sync",
      registers,
    });
    this.syncLastBytes = new Gauge({
      name: "z2mha_sync_last_bytes_moved",
      help: "File bytes the last sync transferred (read from the active plus written to standbys)",
      registers,
    });
    this.syncBytes = new Counter({
      name: "z2mha_sync_bytes_moved_total",
      help: "File bytes transferred by syncs",
      registers,
    });
    this.nodeUp = new Gauge({
      name: "z2mha_node_reachable",
      help: "1 if the node answers over SSH",
      labelNames: ["node"],
      registers,
    });
    this.nodeLatency = new Gauge({
      name: "z2mha_node_probe_latency_seconds",
      help: "Round trip of the last probe command",
      labelNames: ["node"],
      registers,
    });
    this.nodeClockOffset = new Gauge({
      name: "z2mha_node_clock_offset_seconds",
      help: "Node clock minus controller clock",
      labelNames: ["node"],
      registers,
    });
    this.nodeFreeBytes = new Gauge({
      name: "z2mha_node_free_bytes",
      help: "Free space on the file system of the data dir and of the staging dir",
      labelNames: ["node", "dir"],
      registers,
    });
    this.nodeZ2mRunning = new Gauge({
      name: "z2mha_node_zigbee2mqtt_running",
      help: "1 if the node's zigbee2mqtt service runs",
      labelNames: ["node"],
      registers,
    });
    this.nodeHealthy = new Gauge({
      name: "z2mha_node_health",
      help: "1 for the node's current derived health",
      labelNames: ["node", "health"],
      registers,
    });
    this.activeNode = new Gauge({
      name: "z2mha_active_node",
      help: "1 for the active node",
      labelNames: ["node"],
      registers,
    });
    this.bridgeOnline = new Gauge({
      name: "z2mha_bridge_online",
      help: "1 if bridge/state is online",
      registers,
    });
    this.brokerConnected = new Gauge({
      name: "z2mha_mqtt_connected",
      help: "1 if the controller is connected to the MQTT broker",
      registers,
    });
    this.detectionSeconds = new Histogram({
      name: "z2mha_failure_detection_to_action_seconds",
      help: "From the first sign of failure to the policy's action",
      labelNames: ["cause"],
      buckets: [0.5, 1, 2, 5, 10, 20, 30, 60, 120],
      registers,
    });
    for (const id of nodeIds) this.activeNode.set({ node: id }, 0);
  }

  /** Keeps operation, node and bridge metrics in step with what the bus says. */
  follow(bus: EventBus): () => void {
    return bus.subscribe((event) => {
      switch (event.type) {
        case "operation.finished":
          this.#onOperation(event.operation);
          break;
        case "node.changed":
          this.#onNode(event.node);
          break;
        case "bridge.changed":
          this.bridgeOnline.set(event.bridge.state === "online" ? 1 : 0);
          this.brokerConnected.set(event.bridge.broker_connected ? 1 : 0);
          break;
        case "state.changed":
          for (const id of Object.keys(this.#known))
            this.activeNode.set({ node: id }, id === event.state.active ? 1 : 0);
          break;
      }
    });
  }

  readonly #known: Record<string, true> = {};
  readonly #health = new Map<string, string>();

  setActive(nodeIds: string[], active: string | null): void {
    for (const id of nodeIds) {
      this.#known[id] = true;
      this.activeNode.set({ node: id }, id === active ? 1 : 0);
    }
  }

  #onOperation(op: OperationRecord): void {
    this.operations.inc({ kind: op.kind, status: op.status });
    if (op.duration_ms !== undefined) this.operationSeconds.observe({ kind: op.kind }, op.duration_ms / 1000);
    if (op.kind === "sync") {
      const bytes = Number(op.result?.bytes_moved ?? 0);
      if (op.status === "succeeded")
        this.syncLastSuccess.set(Date.parse(op.finished_at ?? op.started_at) / 1000);
      if (op.duration_ms !== undefined) this.syncLastDuration.set(op.duration_ms / 1000);
      this.syncLastBytes.set(bytes);
      if (bytes > 0) this.syncBytes.inc(bytes);
    }
  }

  #onNode(node: NodeStatus): void {
    if (node.reachable !== null) this.nodeUp.set({ node: node.id }, node.reachable ? 1 : 0);
    if (node.latency_ms !== undefined) this.nodeLatency.set({ node: node.id }, node.latency_ms / 1000);
    if (node.clock_offset_ms !== undefined)
      this.nodeClockOffset.set({ node: node.id }, node.clock_offset_ms / 1000);
    if (node.free_bytes?.data_dir !== undefined)
      this.nodeFreeBytes.set({ node: node.id, dir: "data" }, node.free_bytes.data_dir);
    if (node.free_bytes?.staging_dir !== undefined)
      this.nodeFreeBytes.set({ node: node.id, dir: "staging" }, node.free_bytes.staging_dir);
    if (node.zigbee2mqtt_running !== null)
      this.nodeZ2mRunning.set({ node: node.id }, node.zigbee2mqtt_running ? 1 : 0);
    const previous = this.#health.get(node.id);
    if (previous && previous !== node.health) this.nodeHealthy.remove({ node: node.id, health: previous });
    this.#health.set(node.id, node.health);
    this.nodeHealthy.set({ node: node.id, health: node.health }, 1);
  }
}
