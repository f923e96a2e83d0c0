import type {
  AutomationState,
  ClusterInfo,
  ClusterStatus,
  NodeDetail,
  OperationKind,
  OperationRecord,
  SnapshotInfo,
} from "../types.js";

export interface TakeoverRequest {
  target?: string;
  reason?: string;
}

/**
 * What the outside world (REST API, CLI through the API, Home Assistant) can ask of the cluster.
 * Mutating calls start an operation and return its record at once; progress follows on the
 * event bus. Errors are the domain errors of ./errors.ts.
 */
export interface ClusterService {
  info(): ClusterInfo;
  status(): ClusterStatus;
  node(id: string): NodeDetail;
  switchover(request: TakeoverRequest, trigger: string): OperationRecord;
  failover(request: TakeoverRequest, trigger: string): OperationRecord;
  sync(trigger: string, reason?: string): OperationRecord;
  check(trigger: string): OperationRecord;
  operations(limit: number, kind?: OperationKind): OperationRecord[];
  operation(id: string): OperationRecord;
  setAutomation(patch: Partial<AutomationState>, trigger: string): AutomationState;
  snapshots(): SnapshotInfo[];
  restoreSnapshot(id: string, node: string, trigger: string): OperationRecord;
  /** Stops zigbee2mqtt on a node that is not the active one (a stray) and parks its coordinator. */
  stopNode(id: string, trigger: string, reason?: string): OperationRecord;
}
