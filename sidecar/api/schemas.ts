import { z } from "zod";
import {
  type Alert,
  type BridgeStatus,
  type ClusterInfo,
  type ClusterStatus,
  type NodeDetail,
  type NodeStatus,
  OPERATION_KINDS,
  type OperationRecord,
  type Protection,
  type SnapshotInfo,
  STEP_STATUSES,
} from "../types.js";

/**
 * The API's wire shapes. They mirror sidecar/types.ts; the type-level checks at the bottom keep
 * both in step, so a field added to a domain type without its schema fails to compile.
 */

export const errorBody = z
  .object({
    error: z.object({
      code: z.string().meta({ example: "operation_running" }),
      message: z.string(),
      details: z.record(z.string(), z.unknown()).optional(),
    }),
  })
  .meta({ id: "Error" });

const nodeId = z.string().regex(/^[a-z0-9][a-z0-9_-]{0,31}$/);

export const stepRecord = z
  .object({
    key: z.string().meta({ description: "Stable machine key of the step, e.g. start-target" }),
    name: z.string(),
    status: z.enum(STEP_STATUSES),
    started_at: z.string(),
    finished_at: z.string().optional(),
    duration_ms: z.number().optional(),
    detail: z.string().optional(),
    error: z.string().optional(),
    rollback: z.boolean().optional(),
  })
  .meta({ id: "Step" });

export const operationKind = z.enum(OPERATION_KINDS);

export const operationRecord = z
  .object({
    id: z.string(),
    kind: operationKind,
    status: z.enum(["running", "succeeded", "failed", "rolled_back", "interrupted"]),
    mutating: z.boolean(),
    started_at: z.string(),
    finished_at: z.string().optional(),
    duration_ms: z.number().optional(),
    trigger: z.string(),
    reason: z.string().optional(),
    params: z.record(z.string(), z.unknown()),
    steps: z.array(stepRecord),
    result: z.record(z.string(), z.unknown()).optional(),
    error: z
      .object({ step: z.string().optional(), message: z.string(), output: z.string().optional() })
      .optional(),
    last_completed_step: z.string().optional(),
  })
  .meta({ id: "Operation" });

export const automationState = z
  .object({ automatic_failover: z.boolean(), maintenance: z.boolean() })
  .meta({ id: "Automation" });

export const nodeHealth = z.enum([
  "active-healthy",
  "active-degraded",
  "active-down",
  "standby-ready",
  "standby-not-ready",
  "unreachable",
  "fenced",
  "unknown",
]);

export const nodeStatus = z
  .object({
    id: z.string(),
    role: z.enum(["active", "standby"]),
    health: nodeHealth,
    reason: z.string(),
    reachable: z.boolean().nullable(),
    latency_ms: z.number().optional(),
    zigbee2mqtt_running: z.boolean().nullable(),
    coordinator_port_present: z.boolean().nullable(),
    tools_present: z.boolean().nullable(),
    clock_offset_ms: z.number().optional(),
    free_bytes: z.object({ data_dir: z.number().optional(), staging_dir: z.number().optional() }).optional(),
    staging_age_s: z.number().nullable().optional(),
    checked_at: z.string().optional(),
    checks: z.array(
      z.object({
        name: z.string(),
        ok: z.boolean(),
        detail: z.string().optional(),
        severity: z.enum(["error", "warning"]).optional(),
        fix: z.string().optional(),
      }),
    ),
  })
  .meta({ id: "NodeStatus" });

export const bridgeStatus = z
  .object({
    broker_connected: z.boolean(),
    state: z.enum(["online", "offline", "unknown"]),
    publishing_node: z.string().nullable(),
    frontend_host: z.string().optional(),
    coordinator_ieee: z.string().optional(),
    network: z.object({ pan_id: z.number(), extended_pan_id: z.string(), channel: z.number() }).optional(),
    version: z.string().optional(),
    changed_at: z.string().optional(),
  })
  .meta({ id: "BridgeStatus" });

export const alert = z
  .object({
    kind: z.enum([
      "split_brain",
      "no_standby_ready",
      "active_down",
      "broker_unreachable",
      "clock_skew",
      "journal_truncated",
      "recovery",
      "fence_failed",
      "takeover_failed",
      "storage_unavailable",
      "state_corrupt",
    ]),
    severity: z.enum(["info", "warning", "critical"]),
    message: z.string(),
    node: z.string().optional(),
    at: z.string(),
  })
  .meta({ id: "Alert" });

export const info = z
  .object({
    instance_id: z.string().meta({ description: "Stable id of this sidecar installation" }),
    name: z.string(),
    cluster_name: z.string(),
    version: z.string(),
    api_version: z.literal(1),
    nodes: z.array(z.string()),
  })
  .meta({ id: "Info" });

export const protection = z
  .object({
    protected: z
      .boolean()
      .meta({ description: "an active node and at least one standby ready to take over" }),
    ready: z.array(z.string()),
    reason: z.string(),
  })
  .meta({ id: "Protection" });

export const status = z
  .object({
    cluster_name: z.string(),
    active: z.string().nullable(),
    protection,
    automation: automationState,
    bridge: bridgeStatus,
    nodes: z.array(nodeStatus),
    last_sync: z
      .object({
        at: z.string(),
        operation_id: z.string(),
        snapshot_id: z.string().optional(),
        bytes_moved: z.number().optional(),
      })
      .nullable(),
    last_switchover: z
      .object({
        at: z.string(),
        operation_id: z.string(),
        from: z.string().nullable(),
        to: z.string(),
        kind: z.enum(["switchover", "failover"]),
        snapshots: z.array(z.string()).optional(),
      })
      .nullable(),
    last_nvram_snapshot: z.object({ at: z.string(), id: z.string(), node: z.string() }).nullable(),
    last_coordinator_snapshot: z
      .object({
        at: z.string(),
        id: z.string(),
        node: z.string(),
        kind: z.enum(["nvram", "backup"]),
      })
      .nullable()
      .optional()
      .meta({
        description:
          "The newest coordinator state the controller holds, whatever the driver: an NVRAM snapshot (zstack-nvram) or the coordinator_backup.json of a data snapshot",
      }),
    fenced: z.record(z.string(), z.object({ at: z.string(), reason: z.string() })),
    running_operation: operationRecord.nullable(),
    alerts: z.array(alert),
  })
  .meta({ id: "Status" });

export const nodeDetail = nodeStatus
  .extend({
    host: z.string(),
    data_dir: z.string(),
    staging_dir: z.string(),
    coordinator_port: z.string(),
    overrides: z.record(z.string(), z.union([z.string(), z.number(), z.boolean(), z.null()])),
    versions: z.record(z.string(), z.string()).optional(),
    snapshots: z
      .object({
        staging: z.object({ snapshot_id: z.string().nullable(), at: z.string().nullable() }).optional(),
        nvram: z.object({ id: z.string(), at: z.string() }).nullable().optional(),
      })
      .optional(),
    armed: z.object({ at: z.string(), counter: z.number(), source: z.string() }).nullable().optional().meta({
      description:
        "What the node's dongle was armed with for a failover (written and read back after a sync, frame counter ahead of the active's); null when it is not armed",
    }),
  })
  .meta({ id: "NodeDetail" });

export const snapshotInfo = z
  .object({
    id: z.string(),
    kind: z.enum(["data", "nvram"]),
    created_at: z.string(),
    node: z.string(),
    operation_id: z.string().optional(),
    files: z.number().optional(),
    bytes: z.number(),
    pinned: z.boolean().meta({ description: "Kept because the last successful switchover used it" }),
  })
  .meta({ id: "Snapshot" });

export const switchoverRequest = z
  .strictObject({
    target: nodeId.optional().meta({ description: "Node to make active; default: the best ready standby" }),
    reason: z.string().max(500).optional(),
  })
  .meta({ id: "SwitchoverRequest" });

export const failoverRequest = switchoverRequest.meta({ id: "FailoverRequest" });

export const syncRequest = z
  .strictObject({ reason: z.string().max(500).optional() })
  .meta({ id: "SyncRequest" });

/** At least one of the two: said as a union, so that the OpenAPI document says it too. */
export const automationPatch = z
  .union([
    z.strictObject({ automatic_failover: z.boolean(), maintenance: z.boolean().optional() }),
    z.strictObject({ automatic_failover: z.boolean().optional(), maintenance: z.boolean() }),
  ])
  .meta({ id: "AutomationPatch", description: "automatic_failover and/or maintenance" });

/** The body may be left out altogether (no content, or `null`): it then counts as `{}`. */
export function optionalBody<T extends z.ZodObject>(schema: T) {
  return schema.nullish().transform((value): z.output<T> => value ?? ({} as z.output<T>));
}

export const stopNodeRequest = z
  .strictObject({ reason: z.string().max(500).optional() })
  .meta({ id: "StopNodeRequest" });

export const restoreSnapshotRequest = z
  .strictObject({ node: nodeId.meta({ description: "Standby whose staging dir receives the snapshot" }) })
  .meta({ id: "RestoreSnapshotRequest" });

export const operationsQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(1000).default(50),
  kind: operationKind.optional(),
});

// Compile-time guard: each domain type must be assignable to its wire schema and back.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
type Check<T extends true> = T;
export type SchemaChecks = [
  Check<Same<z.infer<typeof operationRecord>, OperationRecord>>,
  Check<Same<z.infer<typeof nodeStatus>, NodeStatus>>,
  Check<Same<z.infer<typeof bridgeStatus>, BridgeStatus>>,
  Check<Same<z.infer<typeof alert>, Alert>>,
  Check<Same<z.infer<typeof info>, ClusterInfo>>,
  Check<Same<z.infer<typeof status>, ClusterStatus>>,
  Check<Same<z.infer<typeof protection>, Protection>>,
  Check<Same<z.infer<typeof nodeDetail>, NodeDetail>>,
  Check<Same<z.infer<typeof snapshotInfo>, SnapshotInfo>>,
];

export type SwitchoverRequest = z.infer<typeof switchoverRequest>;
export type AutomationPatch = z.infer<typeof automationPatch>;
