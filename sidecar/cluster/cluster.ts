import { redactOverrides } from "../config/secret.js";
import type {
  AutomationState,
  ClusterInfo,
  ClusterStatus,
  NodeDetail,
  NodeStatus,
  OperationKind,
  OperationRecord,
  Protection,
  SnapshotInfo,
} from "../types.js";
import { VERSION } from "../version.js";
import { type ClusterContext, nodeOf } from "./context.js";
import { NotFoundError, PreconditionError } from "./errors.js";
import { Monitor } from "./monitor.js";
import { checkPlan } from "./operations/check.js";
import { pinnedSnapshots, restoreSnapshotPlan } from "./operations/data-dir.js";
import { releaseFencedPlan, stopStrayPlan } from "./operations/fencing.js";
import { recoveryPlan } from "./operations/recovery.js";
import { restartPlan } from "./operations/restart.js";
import { syncPlan } from "./operations/sync.js";
import { failoverPlan, readyStandbys, switchoverPlan } from "./operations/takeover.js";
import { FailoverPolicy } from "./policy.js";
import { Scheduler } from "./scheduler.js";
import type { ClusterService, TakeoverRequest } from "./service.js";

export interface ClusterOptions {
  instanceId: string;
  /** Operations the journal showed unfinished at start-up. */
  interrupted: OperationRecord[];
  /** Start monitoring, policy and schedules (false in tests that drive everything by hand). */
  automation?: boolean;
  firstSyncDelayMs?: number;
}

/**
 * The facade the API talks to, and the owner of the running parts: monitor, failover policy,
 * scheduler. Every mutating action goes through the operation runner.
 */
export class Cluster implements ClusterService {
  readonly monitor: Monitor;
  readonly policy: FailoverPolicy;
  readonly scheduler: Scheduler;
  #started = false;

  constructor(
    readonly cx: ClusterContext,
    private readonly options: ClusterOptions,
  ) {
    this.monitor = new Monitor(cx);
    cx.unreachable = (id) => this.monitor.status(id)?.health === "unreachable";
    this.policy = new FailoverPolicy(cx, this.monitor, {
      restart: (node, trigger, reason) =>
        this.#startQuietly(() =>
          this.cx.runner.start(restartPlan(this.cx, this.monitor, node, trigger, reason)),
        ),
      failover: (target, trigger, reason) =>
        this.#startQuietly(() => this.failover({ target, reason }, trigger)),
      stopStray: (node, why) =>
        this.#startQuietly(() => this.cx.runner.start(stopStrayPlan(this.cx, this.monitor, node, why))),
      releaseFenced: (node, why) =>
        this.#startQuietly(() => this.cx.runner.start(releaseFencedPlan(this.cx, node, why))),
    });
    this.scheduler = new Scheduler(cx, this.monitor, {
      sync: (trigger, reason) => this.#startQuietly(() => this.sync(trigger, reason)),
      switchover: (target, trigger, reason) =>
        this.#startQuietly(() => this.switchover({ target, reason }, trigger)),
    });
    cx.watcher.on("change", (bridge) => {
      cx.bus.publish({ type: "bridge.changed", bridge });
      this.monitor.refreshAll();
    });
    cx.bus.subscribe((event) => {
      if (event.type === "node.changed" && this.#adoptPending && !cx.state.get().active) this.#adopt();
      if (event.type === "state.changed") this.monitor.refreshAll();
      if (event.type === "operation.finished") this.#onFinished(event.operation);
    });
  }

  /**
   * A takeover that failed and could not be rolled back leaves the cluster in a state someone must
   * look at: say so loudly, with which node runs zigbee2mqtt as far as the probes know.
   */
  #onFinished(op: OperationRecord): void {
    if (op.kind === "sync" && op.status === "succeeded") {
      // The warning of a takeover that only failed to stage a standby: a full sync staged it.
      const staging = this.cx.alerts.list().find((a) => a.kind === "takeover_failed");
      if (staging?.severity === "warning") this.cx.alerts.clear("takeover_failed");
      return;
    }
    if (op.kind !== "switchover" && op.kind !== "failover") return;
    if (op.status === "succeeded" || op.status === "rolled_back") {
      this.cx.alerts.clear("takeover_failed");
      return;
    }
    if (op.status !== "failed") return;
    const running = this.monitor
      .statuses()
      .filter((s) => s.zigbee2mqtt_running)
      .map((s) => s.id);
    if (op.result?.committed === true) {
      // Past the point of no return the network moved; what failed is only a standby's staged copy.
      this.cx.alerts.raise(
        "takeover_failed",
        "warning",
        `${op.kind} ${op.params.from ?? "?"} → ${op.params.to ?? "?"} moved the network (${op.params.to} is active), but "${op.error?.step}" failed: ${op.error?.message}. The next sync stages it again. zigbee2mqtt runs on: ${running.join(", ") || "no node"}`,
      );
      return;
    }
    this.cx.alerts.raise(
      "takeover_failed",
      "critical",
      `${op.kind} ${op.params.from ?? "?"} → ${op.params.to ?? "?"} failed at "${op.error?.step}" and was not rolled back: ${op.error?.message}. zigbee2mqtt runs on: ${running.join(", ") || "no node"}`,
    );
  }

  /** Connects to the broker, probes every node, recovers or adopts, then starts the automation. */
  async start(): Promise<void> {
    if (this.#started) return;
    this.#started = true;
    this.cx.watcher.start();
    this.cx.metrics.setActive([...this.cx.nodes.keys()], this.cx.state.get().active);
    await this.monitor
      .probeAll(true)
      .catch((error) => this.cx.logger.error({ err: error }, "first probe failed"));
    const mutating = this.options.interrupted.filter(
      (o) => o.mutating && o.kind !== "sync" && o.kind !== "check",
    );
    if (mutating.length > 0) {
      await this.cx.runner.run(recoveryPlan(this.cx, this.monitor, mutating, "startup"));
    } else if (!this.cx.state.get().active) {
      this.#adopt();
    }
    if (this.options.automation !== false) {
      this.monitor.start();
      this.policy.start();
      this.scheduler.start(this.options.firstSyncDelayMs);
    }
  }

  /**
   * Set while no active node could be adopted because some node's state was not known yet (its
   * first probe failed, e.g. under load): adoption is tried again as probes come in.
   */
  #adoptPending = false;

  /** First start on a running cluster: the one node that runs zigbee2mqtt is the active one. */
  #adopt(): void {
    const unknown = this.monitor.statuses().filter((s) => s.zigbee2mqtt_running === null);
    const runningNow = this.monitor.statuses().filter((s) => s.zigbee2mqtt_running);
    if (runningNow.length === 0 && unknown.length > 0) {
      // Not "runs on no node": we do not know yet. Look again when the probes know more.
      if (!this.#adoptPending)
        this.cx.logger.info(
          { unknown: unknown.map((s) => s.id) },
          "no active node adopted yet: waiting for the first answer of every node",
        );
      this.#adoptPending = true;
      return;
    }
    this.#adoptPending = false;
    const running = this.monitor.statuses().filter((s) => s.zigbee2mqtt_running);
    const publishing = this.cx.watcher.status().publishing_node;
    const pick = running.length === 1 ? running[0]?.id : undefined;
    const chosen =
      pick ??
      (running.length === 0
        ? undefined
        : publishing && running.some((r) => r.id === publishing)
          ? publishing
          : undefined);
    if (!chosen) {
      this.cx.runner.record(
        "decision",
        "startup",
        "succeeded",
        { running: running.map((r) => r.id) },
        {
          decision: "no active node adopted",
          detail:
            running.length === 0
              ? "zigbee2mqtt runs on no node: start it on one node, or run a failover to pick one"
              : `zigbee2mqtt runs on ${running.map((r) => r.id).join(" and ")}: split brain, resolve it by hand`,
        },
      );
      return;
    }
    this.cx.state.update((s) => {
      s.active = chosen;
    });
    this.cx.runner.record(
      "decision",
      "startup",
      "succeeded",
      { running: running.map((r) => r.id) },
      {
        decision: "adopted active node",
        detail: `${chosen} runs zigbee2mqtt: it is the active node`,
      },
    );
  }

  #startQuietly(start: () => unknown): void {
    try {
      start();
    } catch (error) {
      this.cx.logger.warn({ err: (error as Error).message }, "automatic operation not started");
    }
  }

  info(): ClusterInfo {
    return {
      instance_id: this.options.instanceId,
      name: "zigbee2mqtt-ha",
      cluster_name: this.cx.config.cluster_name,
      version: VERSION,
      api_version: 1,
      nodes: [...this.cx.nodes.keys()],
    };
  }

  #nodeStatus(id: string): NodeStatus {
    return (
      this.monitor.status(id) ?? {
        id,
        role: this.cx.state.get().active === id ? "active" : "standby",
        health: "unknown",
        reason: "not probed yet",
        reachable: null,
        zigbee2mqtt_running: null,
        coordinator_port_present: null,
        tools_present: null,
        checks: [],
      }
    );
  }

  /** Whether a failover could happen now, and if not, why, in a user's words. */
  #protection(): Protection {
    const state = this.cx.state.get();
    if (!state.active)
      return { protected: false, ready: [], reason: "not protected: no active node is known" };
    const ready = readyStandbys(this.cx, this.monitor, state.active);
    if (ready.length > 0)
      return {
        protected: true,
        ready,
        reason: `${ready.join(", ")} ${ready.length === 1 ? "is" : "are"} ready to take over from ${state.active}`,
      };
    const syncing = this.cx.runner.running?.kind === "sync";
    if (!state.last_sync && !state.staging)
      return {
        protected: false,
        ready,
        reason: `not protected yet: ${syncing ? "the first sync is running" : "no standby has a copy of the data dir yet"}`,
      };
    const why = [...this.cx.nodes.keys()]
      .filter((id) => id !== state.active)
      .map((id) => `${id}: ${this.monitor.readiness(id).reasons.join(", ")}`)
      .join("; ");
    return { protected: false, ready, reason: `not protected: no standby is ready (${why})` };
  }

  status(): ClusterStatus {
    const state = this.cx.state.get();
    return {
      cluster_name: this.cx.config.cluster_name,
      active: state.active,
      protection: this.#protection(),
      automation: state.automation,
      bridge: this.cx.watcher.status(),
      nodes: [...this.cx.nodes.keys()].map((id) => this.#nodeStatus(id)),
      last_sync: state.last_sync ?? null,
      last_switchover: state.last_switchover ?? null,
      last_nvram_snapshot: state.last_nvram_snapshot ?? null,
      last_coordinator_snapshot: this.#lastCoordinatorSnapshot(),
      fenced: state.fenced,
      running_operation: this.cx.runner.running ?? null,
      alerts: this.cx.alerts.list(),
    };
  }

  /** The newer of the last NVRAM snapshot and the newest data snapshot with a coordinator backup. */
  #lastCoordinatorSnapshot(): ClusterStatus["last_coordinator_snapshot"] {
    const nvram = this.cx.state.get().last_nvram_snapshot;
    const data = this.cx.snapshots.latestData();
    const backup = data?.files.some((f) => f.path === "coordinator_backup.json")
      ? { at: data.created_at, id: data.id, node: data.node, kind: "backup" as const }
      : undefined;
    const fromNvram = nvram ? { ...nvram, kind: "nvram" as const } : undefined;
    if (!backup) return fromNvram ?? null;
    if (!fromNvram) return backup;
    return Date.parse(fromNvram.at) >= Date.parse(backup.at) ? fromNvram : backup;
  }

  node(id: string): NodeDetail {
    const config = nodeOf(this.cx, id).config;
    const state = this.cx.state.get();
    const staged = state.staging?.[id];
    const nvram = state.last_nvram_snapshot;
    const armed = state.armed?.[id];
    return {
      ...this.#nodeStatus(id),
      host: config.ssh.host,
      data_dir: config.data_dir,
      staging_dir: config.staging_dir,
      coordinator_port: config.coordinator.port,
      overrides: redactOverrides(config.overrides),
      snapshots: {
        staging: { snapshot_id: staged?.snapshot_id ?? null, at: staged?.at ?? null },
        nvram: nvram ? { id: nvram.id, at: nvram.at } : null,
      },
      armed: armed ? { at: armed.at, counter: armed.counter, source: armed.source } : null,
    };
  }

  switchover(request: TakeoverRequest, trigger: string): OperationRecord {
    this.cx.runner.assertWritable();
    this.#preemptArming("a switchover was requested");
    return this.cx.runner.start(switchoverPlan(this.cx, this.monitor, { ...request, trigger }));
  }

  failover(request: TakeoverRequest, trigger: string): OperationRecord {
    this.cx.runner.assertWritable();
    this.#preemptArming("a failover was requested");
    return this.cx.runner.start(failoverPlan(this.cx, this.monitor, { ...request, trigger }));
  }

  /** A sync that is arming a standby ends soon instead (the request itself still gets its 409). */
  #preemptArming(reason: string): void {
    if (this.cx.runner.running?.kind === "sync") this.cx.arming.preempt(reason);
  }

  sync(trigger: string, reason?: string): OperationRecord {
    this.cx.runner.assertWritable();
    return this.cx.runner.start(
      syncPlan(this.cx, {
        trigger,
        ...(reason ? { reason } : {}),
        refreshBackup: "auto",
      }),
    );
  }

  /**
   * A check while one runs answers with the running one: checks probe every node, and a client
   * pressing "check" in a loop must not pile up probes and journal entries.
   */
  check(trigger: string): OperationRecord {
    return (
      this.cx.runner.runningOf("check") ?? this.cx.runner.start(checkPlan(this.cx, this.monitor, trigger))
    );
  }

  operations(limit: number, kind?: OperationKind): OperationRecord[] {
    return this.cx.runner
      .list()
      .filter((o) => !kind || o.kind === kind)
      .slice(0, limit);
  }

  operation(id: string): OperationRecord {
    const op = this.cx.runner.get(id);
    if (!op) throw new NotFoundError(`no operation "${id}"`);
    return op;
  }

  setAutomation(patch: Partial<AutomationState>, trigger: string): AutomationState {
    const before = this.cx.state.get().automation;
    const state = this.cx.state.update((s) => {
      if (patch.automatic_failover !== undefined) s.automation.automatic_failover = patch.automatic_failover;
      if (patch.maintenance !== undefined) s.automation.maintenance = patch.maintenance;
    });
    if (
      before.automatic_failover !== state.automation.automatic_failover ||
      before.maintenance !== state.automation.maintenance
    ) {
      this.cx.runner.record(
        "decision",
        trigger,
        "succeeded",
        { automation: patch },
        { before, after: state.automation },
      );
    }
    return state.automation;
  }

  snapshots(): SnapshotInfo[] {
    return this.cx.snapshots.list(pinnedSnapshots(this.cx));
  }

  restoreSnapshot(id: string, node: string, trigger: string): OperationRecord {
    this.cx.runner.assertWritable();
    const snapshot = this.cx.snapshots.getData(id);
    if (!snapshot) throw new NotFoundError(`no data snapshot "${id}"`);
    nodeOf(this.cx, node);
    if (node === this.cx.state.get().active) {
      throw new PreconditionError(
        `${node} is the active node: a snapshot is restored only into a standby's staging dir`,
      );
    }
    return this.cx.runner.start(restoreSnapshotPlan(this.cx, snapshot, node, trigger));
  }

  stopNode(id: string, trigger: string, reason?: string): OperationRecord {
    nodeOf(this.cx, id);
    if (id === this.cx.state.get().active)
      throw new PreconditionError(
        `${id} is the active node: stopping it would stop the Zigbee network; switch over or fail over instead`,
      );
    this.cx.runner.assertWritable();
    return this.cx.runner.start(
      stopStrayPlan(this.cx, this.monitor, id, reason ?? `stop requested (${trigger})`, trigger),
    );
  }

  async close(): Promise<void> {
    this.scheduler.stop();
    this.policy.stop();
    this.monitor.stop();
    await this.cx.watcher.stop();
    await Promise.allSettled([...this.cx.nodes.values()].map((n) => n.close()));
  }
}
