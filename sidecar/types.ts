/**
 * Plain domain types shared by every layer. Nothing here imports anything: the modules above
 * (store, node, z2m, cluster, notify, api) all speak these words.
 */

/** Every operation kind; the journal's and the API's schemas are built from this list. */
export const OPERATION_KINDS = [
  "switchover",
  "failover",
  "sync",
  "check",
  "restart",
  "recovery",
  "restore-snapshot",
  "decision",
  "fence",
] as const;

export type OperationKind = (typeof OPERATION_KINDS)[number];

export type OperationStatus =
  | "running"
  | "succeeded"
  | "failed"
  /** Failed and then rolled back to the state before it started. */
  | "rolled_back"
  /** Found unfinished in the journal at start-up: the sidecar died while it ran. */
  | "interrupted";

export const STEP_STATUSES = ["running", "succeeded", "failed", "skipped", "interrupted"] as const;

export type StepStatus = (typeof STEP_STATUSES)[number];

export interface StepRecord {
  /** Stable machine key ("start-target", "stage:node2"): what recovery and rollback match on. */
  key: string;
  /** Display text, e.g. "start node2". */
  name: string;
  status: StepStatus;
  started_at: string;
  finished_at?: string;
  duration_ms?: number;
  /** Short human-readable result, e.g. "zigbee2mqtt stopped" or the tail of a tool's output. */
  detail?: string;
  error?: string;
  /** Rollback steps are recorded with the rest, marked so. */
  rollback?: boolean;
}

export interface OperationRecord {
  id: string;
  kind: OperationKind;
  status: OperationStatus;
  mutating: boolean;
  started_at: string;
  finished_at?: string;
  duration_ms?: number;
  /** Who or what asked: "api", "cli", "policy", "schedule", "startup". */
  trigger: string;
  reason?: string;
  params: Record<string, unknown>;
  steps: StepRecord[];
  /** Free-form outcome data of the operation (bytes moved, new active node, ...). */
  result?: Record<string, unknown>;
  error?: { step?: string; message: string; output?: string };
  /** For interrupted operations: the last step that finished successfully. */
  last_completed_step?: string;
}

export interface AutomationState {
  automatic_failover: boolean;
  maintenance: boolean;
}

/** What the sidecar persists about the cluster between restarts. */
export interface ClusterState {
  version: 1;
  active: string | null;
  automation: AutomationState;
  /** Nodes that must not run zigbee2mqtt until an operator or a switchover clears them. */
  fenced: Record<string, { at: string; reason: string }>;
  last_sync?: { at: string; operation_id: string; snapshot_id?: string; bytes_moved?: number };
  last_switchover?: {
    at: string;
    operation_id: string;
    from: string | null;
    to: string;
    kind: "switchover" | "failover";
    /** Snapshots the takeover used; kept by pruning until the next takeover. */
    snapshots?: string[];
  };
  /**
   * The NVRAM read in the last switchover; `backup_key`: the content key (coordinator-state.ts)
   * of the coordinator_backup.json zigbee2mqtt wrote on that same stop, so a later backup with the
   * same content is known to hold nothing the NVRAM copy lacks.
   */
  last_nvram_snapshot?: { at: string; id: string; node: string; backup_key?: string };
  /** What each standby's staging dir holds, as of the last sync that reached it. */
  staging?: Record<string, { snapshot_id: string; at: string; operation_id: string }>;
  /** When zigbee2mqtt last answered a backup request (coordinator_backup.json refreshed). */
  last_backup_refresh?: { at: string; node: string };
  /**
   * The highest network frame counter the controller wrote onto a dongle, when, where, for which
   * network: a coordinator counts on from it once started, which no snapshot may show yet.
   */
  frame_counter_issued?: { at: string; node: string; counter: number; extended_pan_id: string };
  /**
   * Standbys whose dongle holds the controller's freshest coordinator state, read back, with a
   * frame counter ahead of the active's (operations/standby.ts): a failover onto one writes nothing.
   */
  armed?: Record<
    string,
    {
      at: string;
      /** restoreSourceOf's key: equal keys mean equal content, counters aside. */
      source: string;
      extended_pan_id: string;
      counter: number;
      /** The coordinator port it was armed through: another port is another dongle. */
      port: string;
      operation_id: string;
    }
  >;
}

export type NodeRole = "active" | "standby";

export type NodeHealth =
  | "active-healthy"
  | "active-degraded"
  | "active-down"
  | "standby-ready"
  | "standby-not-ready"
  | "unreachable"
  | "fenced"
  | "unknown";

export interface NodeCheck {
  name: string;
  ok: boolean;
  detail?: string;
  /** For the thorough checks of a check operation: an error stops switchovers, a warning does not. */
  severity?: "error" | "warning";
  /** What to do about a failure. */
  fix?: string;
}

export interface NodeStatus {
  id: string;
  role: NodeRole;
  health: NodeHealth;
  reason: string;
  reachable: boolean | null;
  latency_ms?: number;
  zigbee2mqtt_running: boolean | null;
  coordinator_port_present: boolean | null;
  tools_present: boolean | null;
  clock_offset_ms?: number;
  free_bytes?: { data_dir?: number; staging_dir?: number };
  staging_age_s?: number | null;
  checked_at?: string;
  checks: NodeCheck[];
}

export interface BridgeStatus {
  /** Whether the controller's MQTT client is connected to the broker. */
  broker_connected: boolean;
  state: "online" | "offline" | "unknown";
  /** Node whose frontend host appears in bridge/info, if any. */
  publishing_node: string | null;
  frontend_host?: string;
  coordinator_ieee?: string;
  network?: { pan_id: number; extended_pan_id: string; channel: number };
  version?: string;
  changed_at?: string;
}

export type AlertKind =
  | "split_brain"
  | "no_standby_ready"
  | "active_down"
  | "broker_unreachable"
  | "clock_skew"
  | "journal_truncated"
  | "recovery"
  | "fence_failed"
  | "takeover_failed"
  /** The controller's state dir refuses writes (full, read-only): no new mutating operation starts. */
  | "storage_unavailable"
  /** A file in the state dir could not be read (a snapshot, a journal line) and was set aside. */
  | "state_corrupt";

export interface Alert {
  kind: AlertKind;
  severity: "info" | "warning" | "critical";
  message: string;
  node?: string;
  at: string;
}

/** Everything published on the event stream and fed to notifiers. */
export type ClusterEvent =
  | { type: "operation.started"; operation: OperationRecord }
  | { type: "operation.step"; operation_id: string; kind: OperationKind; step: StepRecord }
  | { type: "operation.finished"; operation: OperationRecord }
  | { type: "state.changed"; state: ClusterState }
  | { type: "node.changed"; node: NodeStatus; previous?: NodeHealth }
  | { type: "bridge.changed"; bridge: BridgeStatus }
  | { type: "alert.raised"; alert: Alert }
  | { type: "alert.cleared"; alert: Pick<Alert, "kind" | "node" | "at"> };

export type ClusterEventType = ClusterEvent["type"];

export interface ClusterInfo {
  instance_id: string;
  name: string;
  cluster_name: string;
  version: string;
  api_version: 1;
  nodes: string[];
}

/**
 * Whether a failover could happen right now: an active node and at least one standby ready to
 * take over. A fresh installation is "not protected yet" until its first sync staged a standby.
 */
export interface Protection {
  protected: boolean;
  /** The ready standbys, best first. */
  ready: string[];
  /** One sentence for a user: "node2 is ready to take over", "not protected yet: first sync running". */
  reason: string;
}

export interface ClusterStatus {
  cluster_name: string;
  active: string | null;
  protection: Protection;
  automation: AutomationState;
  bridge: BridgeStatus;
  nodes: NodeStatus[];
  last_sync: NonNullable<ClusterState["last_sync"]> | null;
  last_switchover: NonNullable<ClusterState["last_switchover"]> | null;
  last_nvram_snapshot: NonNullable<ClusterState["last_nvram_snapshot"]> | null;
  /** The newest coordinator state held, driver-neutral: an NVRAM snapshot or a data snapshot's backup. */
  last_coordinator_snapshot?: { at: string; id: string; node: string; kind: "nvram" | "backup" } | null;
  fenced: ClusterState["fenced"];
  running_operation: OperationRecord | null;
  alerts: Alert[];
}

export interface NodeDetail extends NodeStatus {
  host: string;
  data_dir: string;
  staging_dir: string;
  coordinator_port: string;
  overrides: Record<string, string | number | boolean | null>;
  versions?: Record<string, string>;
  snapshots?: {
    staging?: { snapshot_id: string | null; at: string | null };
    nvram?: { id: string; at: string } | null;
  };
  /** What its dongle was armed with for a failover (operations/standby.ts); null: not armed. */
  armed?: { at: string; counter: number; source: string } | null;
}

export interface SnapshotInfo {
  id: string;
  kind: "data" | "nvram";
  created_at: string;
  node: string;
  operation_id?: string;
  files?: number;
  bytes: number;
  pinned: boolean;
}
