import { formatDuration } from "../config/duration.js";
import type {
  AutomationState,
  ClusterEvent,
  ClusterState,
  NodeHealth,
  OperationRecord,
  OperationStatus,
} from "../types.js";
import { type NotificationName, OBJECTS, type ObjectValues, type Outcome } from "./snmp-mib.js";

/** One notification to send, independent of MIB layout and transport. */
export interface Z2mhaNotification {
  name: NotificationName;
  values: ObjectValues;
  /** How the prototype's CUSTOM-SCRIPT-MIB trap words the same event. */
  prototype: { scriptName: string; scriptStatus: "OK" | "ERR" };
}

type Fields = Partial<Omit<ObjectValues, "z2mhaClusterName" | "z2mhaMessage">>;

const OUTCOME_OF: Partial<Record<OperationStatus, Outcome>> = {
  succeeded: "succeeded",
  failed: "failed",
  rolled_back: "rolledBack",
  interrupted: "interrupted",
};

/**
 * Turns cluster events into notifications. Some notifications are about a change (a node became
 * unreachable, automation was paused), so the mapper remembers what it saw last: per node
 * whether it was reachable, the automation flags, the active node, and which split-brain alerts
 * are already reported. One instance per notifier; it never throws on odd events, it skips them.
 */
export class NotificationMapper {
  readonly #reachable = new Map<string, boolean>();
  #automation: AutomationState | undefined;
  #active: string | null = null;
  readonly #splitBrain = new Set<string>();

  /**
   * `initial`: the cluster state when the notifier starts, so that the first automation change
   * is reported; without it the first state.changed event only sets the baseline.
   */
  constructor(
    private readonly clusterName: string,
    initial?: ClusterState,
  ) {
    if (initial) {
      this.#active = initial.active;
      this.#automation = { ...initial.automation };
    }
  }

  map(event: ClusterEvent): Z2mhaNotification | undefined {
    switch (event.type) {
      case "operation.started":
        return this.#started(event.operation);
      case "operation.finished":
        return this.#finished(event.operation);
      case "node.changed":
        return this.#nodeChanged(event.node.id, event.node.reachable, event.node.reason, event.previous);
      case "alert.raised":
        if (event.alert.kind === "storage_unavailable") return this.#storage(true, event.alert.message);
        if (event.alert.kind !== "split_brain") return undefined;
        return this.#splitBrainRaised(event.alert.node, event.alert.message);
      case "alert.cleared":
        if (event.alert.kind === "storage_unavailable") return this.#storage(false, "");
        if (event.alert.kind === "split_brain") this.#splitBrain.delete(event.alert.node ?? "");
        return undefined;
      case "state.changed":
        this.#active = event.state.active;
        return this.#automationChanged(event.state.automation);
      default:
        return undefined;
    }
  }

  #make(
    name: NotificationName,
    message: string,
    fields: Fields,
    prototype: Z2mhaNotification["prototype"],
  ): Z2mhaNotification {
    return {
      name,
      values: {
        z2mhaClusterName: this.clusterName,
        z2mhaNodeId: "",
        z2mhaPreviousActiveNode: "",
        z2mhaNewActiveNode: "",
        z2mhaOperationId: "",
        z2mhaOperationStep: "",
        z2mhaOperationOutcome: "succeeded",
        z2mhaOperationDuration: 0,
        z2mhaAutomaticFailover: false,
        z2mhaMaintenanceMode: false,
        ...fields,
        z2mhaMessage: message,
      },
      prototype,
    };
  }

  #started(op: OperationRecord): Z2mhaNotification | undefined {
    if (op.kind !== "switchover" && op.kind !== "failover") return undefined;
    const { from, to } = endpoints(op);
    const by = op.reason ? `${op.trigger}: ${op.reason}` : op.trigger;
    const message = `${op.kind}${route(from, to)} started${by ? ` (${by})` : ""}`;
    return this.#make(
      op.kind === "switchover" ? "z2mhaSwitchoverStarted" : "z2mhaFailoverStarted",
      message,
      { z2mhaOperationId: op.id, z2mhaPreviousActiveNode: from, z2mhaNewActiveNode: to },
      { scriptName: `z2m-ha ${op.kind}`, scriptStatus: "OK" },
    );
  }

  #finished(op: OperationRecord): Z2mhaNotification | undefined {
    if (op.kind !== "switchover" && op.kind !== "failover" && op.kind !== "sync") return undefined;
    const outcome = OUTCOME_OF[op.status];
    if (!outcome) return undefined;
    const ok = outcome === "succeeded";
    const duration = durationOf(op);
    const step = ok ? "" : failedStep(op);
    const prototype = { scriptName: `z2m-ha ${op.kind}`, scriptStatus: ok ? "OK" : "ERR" } as const;
    const common: Fields = {
      z2mhaOperationId: op.id,
      z2mhaOperationOutcome: outcome,
      z2mhaOperationDuration: duration,
      z2mhaOperationStep: step,
    };
    if (op.kind === "sync") {
      const source = text(op.result?.source) || text(op.params.source) || (this.#active ?? "");
      const what = `sync${source ? ` from ${source}` : ""}`;
      return this.#make(
        ok ? "z2mhaSyncSucceeded" : "z2mhaSyncFailed",
        ok ? `${what} succeeded in ${formatDuration(duration)}` : failureSentence(what, op, outcome, step),
        { ...common, z2mhaNodeId: source },
        prototype,
      );
    }
    const { from, to } = endpoints(op);
    const what = `${op.kind}${route(from, to)}`;
    let message: string;
    if (ok) message = `${what} succeeded in ${formatDuration(duration)}, ${to || "the new node"} is active`;
    // Only a switchover's rollback restarts the old active; a failover's old active is dead.
    else message = failureSentence(what, op, outcome, step, op.kind === "switchover" ? from : "");
    const switchover = op.kind === "switchover";
    const name: NotificationName = ok
      ? switchover
        ? "z2mhaSwitchoverSucceeded"
        : "z2mhaFailoverSucceeded"
      : switchover
        ? "z2mhaSwitchoverFailed"
        : "z2mhaFailoverFailed";
    return this.#make(
      name,
      message,
      { ...common, z2mhaPreviousActiveNode: from, z2mhaNewActiveNode: to },
      prototype,
    );
  }

  #nodeChanged(
    id: string,
    reachable: boolean | null,
    reason: string,
    previous: NodeHealth | undefined,
  ): Z2mhaNotification | undefined {
    if (reachable === null) return undefined;
    let before = this.#reachable.get(id);
    if (before === undefined && previous !== undefined && previous !== "unknown") {
      before = previous !== "unreachable";
    }
    this.#reachable.set(id, reachable);
    if (before === reachable) return undefined;
    // A node first seen reachable is the normal case, nothing to report; first seen unreachable is.
    if (before === undefined && reachable) return undefined;
    if (reachable) {
      return this.#make(
        "z2mhaNodeReachable",
        `node ${id} is reachable again`,
        { z2mhaNodeId: id },
        { scriptName: "z2m-ha node", scriptStatus: "OK" },
      );
    }
    return this.#make(
      "z2mhaNodeUnreachable",
      `node ${id} is unreachable${reason ? `: ${reason}` : ""}`,
      { z2mhaNodeId: id },
      { scriptName: "z2m-ha node", scriptStatus: "ERR" },
    );
  }

  /** Raised once per episode (a changed message updates the alert, not another notification). */
  #storageDown = false;

  #storage(down: boolean, message: string): Z2mhaNotification | undefined {
    if (down === this.#storageDown) return undefined;
    this.#storageDown = down;
    return down
      ? this.#make(
          "z2mhaStorageUnavailable",
          message,
          {},
          { scriptName: "z2m-ha storage", scriptStatus: "ERR" },
        )
      : this.#make(
          "z2mhaStorageAvailable",
          "the controller's state dir takes writes again: operations resume",
          {},
          { scriptName: "z2m-ha storage", scriptStatus: "OK" },
        );
  }

  #splitBrainRaised(node: string | undefined, message: string): Z2mhaNotification | undefined {
    // An alert stays raised until it is cleared; report it once, not on every probe that sees it.
    const key = node ?? "";
    if (this.#splitBrain.has(key)) return undefined;
    this.#splitBrain.add(key);
    return this.#make(
      "z2mhaSplitBrainDetected",
      message || `split brain${node ? ` on node ${node}` : ""}`,
      { z2mhaNodeId: key },
      { scriptName: "z2m-ha split-brain", scriptStatus: "ERR" },
    );
  }

  #automationChanged(now: AutomationState): Z2mhaNotification | undefined {
    const before = this.#automation;
    this.#automation = { ...now };
    if (!before) return undefined;
    const changes: string[] = [];
    let less = false;
    let more = false;
    if (before.automatic_failover !== now.automatic_failover) {
      changes.push(`automatic failover turned ${now.automatic_failover ? "on" : "off"}`);
      if (now.automatic_failover) more = true;
      else less = true;
    }
    if (before.maintenance !== now.maintenance) {
      changes.push(now.maintenance ? "maintenance mode entered" : "maintenance mode left");
      if (now.maintenance) less = true;
      else more = true;
    }
    if (changes.length === 0) return undefined;
    // Both directions at once (one flag on, the other off): the state that results decides.
    const resumed = more && (!less || (now.automatic_failover && !now.maintenance));
    const state = `automatic failover ${now.automatic_failover ? "on" : "off"}, maintenance ${now.maintenance ? "on" : "off"}`;
    return this.#make(
      resumed ? "z2mhaAutomationResumed" : "z2mhaAutomationPaused",
      `automation ${resumed ? "resumed" : "paused"}: ${changes.join(", ")} (now ${state})`,
      { z2mhaAutomaticFailover: now.automatic_failover, z2mhaMaintenanceMode: now.maintenance },
      { scriptName: "z2m-ha automation", scriptStatus: "OK" },
    );
  }
}

function text(value: unknown): string {
  return typeof value === "string" ? value : "";
}

/** Old and new active node: the result when the operation knows them, else what was asked. */
function endpoints(op: OperationRecord): { from: string; to: string } {
  return {
    from: text(op.result?.from) || text(op.params.from),
    to: text(op.result?.to) || text(op.params.to) || text(op.params.target),
  };
}

function route(from: string, to: string): string {
  if (from && to) return ` from ${from} to ${to}`;
  if (to) return ` to ${to}`;
  if (from) return ` away from ${from}`;
  return "";
}

function durationOf(op: OperationRecord): number {
  if (typeof op.duration_ms === "number" && Number.isFinite(op.duration_ms)) {
    return Math.max(0, Math.round(op.duration_ms));
  }
  const started = Date.parse(op.started_at);
  const finished = op.finished_at ? Date.parse(op.finished_at) : Number.NaN;
  return Number.isFinite(started) && Number.isFinite(finished) ? Math.max(0, finished - started) : 0;
}

function failedStep(op: OperationRecord): string {
  if (op.error?.step) return op.error.step;
  const steps = op.steps.filter((s) => !s.rollback);
  const failed = steps.findLast((s) => s.status === "failed" || s.status === "interrupted");
  if (failed) return failed.name;
  return steps.findLast((s) => s.status === "running")?.name ?? "";
}

function failureSentence(
  what: string,
  op: OperationRecord,
  outcome: Outcome,
  step: string,
  from = "",
): string {
  const at = step ? ` at step ${step}` : "";
  if (outcome === "interrupted") return `${what} was interrupted${at} (the controller stopped while it ran)`;
  const head = `${what} failed${at}`;
  const tail = outcome === "rolledBack" ? `; rolled back${from ? `, ${from} is active again` : ""}` : "";
  // z2mhaMessage (and the prototype's scriptMessage) hold 255 bytes. An error carrying a tool's
  // output used to push the outcome ("rolled back, node1 is active again") off the end: the error
  // gives way instead, on one line.
  const error = (op.error?.message ?? "").replace(/\s+/g, " ").trim();
  if (!error) return `${head}${tail}`;
  const room = MESSAGE_MAX_BYTES - Buffer.byteLength(`${head}: ${tail}`);
  return `${head}: ${fitUtf8(error, room)}${tail}`;
}

const MESSAGE_MAX_BYTES = OBJECTS.z2mhaMessage.syntax.maxBytes;

/**
 * `text` if it fits in `maxBytes` of UTF-8, else as much of it as fits followed by "...". ASCII
 * dots, not "…": the same message goes into the prototype's scriptMessage, a DisplayString, which
 * receivers print as hex as soon as it holds a non-ASCII byte.
 */
function fitUtf8(text: string, maxBytes: number): string {
  if (Buffer.byteLength(text) <= maxBytes) return text;
  const ellipsis = "...";
  let out = "";
  for (const char of text) {
    if (Buffer.byteLength(out + char + ellipsis) > maxBytes) break;
    out += char;
  }
  return `${out}${ellipsis}`;
}
