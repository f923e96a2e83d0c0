import type { Config } from "../config/schema.js";
import type { EventBus } from "../notify/bus.js";
import type { StateStore } from "../store/state.js";
import type {
  AutomationState,
  BridgeStatus,
  ClusterInfo,
  ClusterStatus,
  NodeDetail,
  NodeStatus,
  OperationKind,
  OperationRecord,
  SnapshotInfo,
} from "../types.js";
import { VERSION } from "../version.js";
import type { Alerts } from "./alerts.js";
import { NotFoundError, NotImplementedError } from "./errors.js";
import type { OperationRunner } from "./runner.js";
import type { ClusterService, TakeoverRequest } from "./service.js";

export interface ClusterDeps {
  config: Config;
  instanceId: string;
  state: StateStore;
  runner: OperationRunner;
  bus: EventBus;
  alerts: Alerts;
}

function unknownNode(id: string, active: string | null): NodeStatus {
  return {
    id,
    role: id === active ? "active" : "standby",
    health: "unknown",
    reason: "not checked yet",
    reachable: null,
    zigbee2mqtt_running: null,
    coordinator_port_present: null,
    tools_present: null,
    checks: [],
  };
}

/** The facade the API talks to. Operations, monitoring and policy plug in behind it. */
export class Cluster implements ClusterService {
  protected readonly config: Config;
  protected readonly stateStore: StateStore;
  protected readonly runner: OperationRunner;
  protected readonly bus: EventBus;
  protected readonly alerts: Alerts;
  readonly #instanceId: string;

  constructor(deps: ClusterDeps) {
    this.config = deps.config;
    this.stateStore = deps.state;
    this.runner = deps.runner;
    this.bus = deps.bus;
    this.alerts = deps.alerts;
    this.#instanceId = deps.instanceId;
  }

  info(): ClusterInfo {
    return {
      instance_id: this.#instanceId,
      name: "zigbee2mqtt-ha",
      cluster_name: this.config.cluster_name,
      version: VERSION,
      api_version: 1,
      nodes: this.config.nodes.map((n) => n.id),
    };
  }

  protected nodeStatuses(): NodeStatus[] {
    const active = this.stateStore.get().active;
    return this.config.nodes.map((n) => unknownNode(n.id, active));
  }

  protected bridgeStatus(): BridgeStatus {
    return { broker_connected: false, state: "unknown", publishing_node: null };
  }

  status(): ClusterStatus {
    const state = this.stateStore.get();
    return {
      cluster_name: this.config.cluster_name,
      active: state.active,
      automation: state.automation,
      bridge: this.bridgeStatus(),
      nodes: this.nodeStatuses(),
      last_sync: state.last_sync ?? null,
      last_switchover: state.last_switchover ?? null,
      last_nvram_snapshot: state.last_nvram_snapshot ?? null,
      fenced: state.fenced,
      running_operation: this.runner.running ?? null,
      alerts: this.alerts.list(),
    };
  }

  node(id: string): NodeDetail {
    const config = this.config.nodes.find((n) => n.id === id);
    const status = this.nodeStatuses().find((n) => n.id === id);
    if (!config || !status) throw new NotFoundError(`no node "${id}"`);
    return {
      ...status,
      host: config.ssh.host,
      data_dir: config.data_dir,
      staging_dir: config.staging_dir,
      coordinator_port: config.coordinator.port,
      overrides: config.overrides,
    };
  }

  switchover(_request: TakeoverRequest, _trigger: string): OperationRecord {
    throw new NotImplementedError("switchover is not available in this build");
  }

  failover(_request: TakeoverRequest, _trigger: string): OperationRecord {
    throw new NotImplementedError("failover is not available in this build");
  }

  sync(_trigger: string, _reason?: string): OperationRecord {
    throw new NotImplementedError("sync is not available in this build");
  }

  check(_trigger: string): OperationRecord {
    throw new NotImplementedError("check is not available in this build");
  }

  operations(limit: number, kind?: OperationKind): OperationRecord[] {
    return this.runner
      .list()
      .filter((o) => !kind || o.kind === kind)
      .slice(0, limit);
  }

  operation(id: string): OperationRecord {
    const op = this.runner.get(id);
    if (!op) throw new NotFoundError(`no operation "${id}"`);
    return op;
  }

  setAutomation(patch: Partial<AutomationState>, trigger: string): AutomationState {
    const before = this.stateStore.get().automation;
    const state = this.stateStore.update((s) => {
      if (patch.automatic_failover !== undefined) s.automation.automatic_failover = patch.automatic_failover;
      if (patch.maintenance !== undefined) s.automation.maintenance = patch.maintenance;
    });
    if (
      before.automatic_failover !== state.automation.automatic_failover ||
      before.maintenance !== state.automation.maintenance
    ) {
      this.runner.record(
        "decision",
        trigger,
        "succeeded",
        { automation: patch },
        {
          before,
          after: state.automation,
        },
      );
      this.bus.publish({ type: "state.changed", state });
    }
    return state.automation;
  }

  snapshots(): SnapshotInfo[] {
    return [];
  }

  restoreSnapshot(_id: string, _node: string, _trigger: string): OperationRecord {
    throw new NotImplementedError("snapshot restore is not available in this build");
  }

  async close(): Promise<void> {}
}
