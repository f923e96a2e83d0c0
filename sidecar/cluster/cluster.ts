import { redactOverrides } from "../config/secret.js";
import { parseNvram } from "../coordinator/nvram.js";
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
import { asStepFailure, readNvram, stopAndConfirm, waitOnline, withTool } from "./operations/common.js";
import { recoveryPlan } from "./operations/recovery.js";
import { pinnedSnapshots, stageSnapshot, syncPlan } from "./operations/sync.js";
import { failoverPlan, readyStandbys, switchoverPlan } from "./operations/takeover.js";
import { FailoverPolicy } from "./policy.js";
import { StepFailure } from "./runner.js";
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
      restart: (node, trigger, reason) => this.#startQuietly(() => this.#restart(node, trigger, reason)),
      failover: (target, trigger, reason) =>
        this.#startQuietly(() => this.failover({ target, reason }, trigger)),
      stopStray: (node, why) => this.#startQuietly(() => this.#stopStray(node, why)),
      releaseFenced: (node, why) => this.#startQuietly(() => this.#releaseFenced(node, why)),
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
      fenced: state.fenced,
      running_operation: this.cx.runner.running ?? null,
      alerts: this.cx.alerts.list(),
    };
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
    return this.cx.runner.start({
      kind: "restore-snapshot",
      mutating: true,
      trigger,
      params: { snapshot: id, node },
      ctx: {},
      steps: [
        {
          key: `stage:${node}`,
          name: `stage ${id} on ${node}`,
          timeoutMs: 300_000,
          run: async ({ op }) => {
            const result = await stageSnapshot(this.cx, node, snapshot, op.id);
            return `${result.files_uploaded} files uploaded (${result.bytes_moved} bytes), ${result.files_linked} unchanged`;
          },
        },
      ],
    });
  }

  stopNode(id: string, trigger: string, reason?: string): OperationRecord {
    nodeOf(this.cx, id);
    if (id === this.cx.state.get().active)
      throw new PreconditionError(
        `${id} is the active node: stopping it would stop the Zigbee network; switch over or fail over instead`,
      );
    this.cx.runner.assertWritable();
    return this.#stopStray(id, reason ?? `stop requested (${trigger})`, trigger);
  }

  /** Restarts zigbee2mqtt in place on the active node (the policy's first answer to a crash). */
  #restart(node: string, trigger: string, reason: string): OperationRecord {
    return this.cx.runner.start({
      kind: "restart",
      mutating: true,
      trigger,
      reason,
      params: { node },
      ctx: {},
      steps: [
        {
          key: "start",
          name: `start ${node}`,
          timeoutMs: 90_000,
          run: async () => {
            try {
              await nodeOf(this.cx, node).startService();
            } catch (error) {
              throw asStepFailure(error);
            }
            return "service started";
          },
        },
        {
          key: "wait-online",
          name: `wait for ${node} online`,
          timeoutMs: 125_000,
          run: async ({ signal }) => {
            const detail = await waitOnline(this.cx, node, {}, 120_000, signal);
            await this.monitor.probe(node, false);
            return detail;
          },
        },
      ],
    });
  }

  /** Parks a node's coordinator: a soft reset after which it holds its NVRAM but runs no network. */
  async #park(node: string, signal: AbortSignal): Promise<string> {
    const text = await readNvram(this.cx, node, signal);
    const legacy = parseNvram(text).LEGACY ?? {};
    // The step's abort also ends the remote tool.
    const item = await withTool(this.cx, node, "park the coordinator", signal, (n, s) =>
      n.parkCoordinator(legacy, s),
    );
    return `soft reset (nvram_write of ${item} unchanged): its coordinator holds`;
  }

  /**
   * A fenced node is back with zigbee2mqtt stopped: it is a standby like any other once its
   * coordinator runs no network. Parked (a soft reset, NVRAM kept), or found unplugged (no power,
   * nothing on the air), the fence is lifted; otherwise it stays and the guard tries again later.
   */
  #releaseFenced(node: string, why: string): OperationRecord {
    let parked: string | undefined;
    return this.cx.runner.start({
      kind: "fence",
      mutating: true,
      trigger: "guard",
      reason: why,
      params: { node, active: this.cx.state.get().active },
      ctx: {},
      steps: [
        {
          key: "park-fenced",
          name: `park the coordinator on ${node}`,
          timeoutMs: 300_000,
          continueOnFailure: true,
          run: async ({ signal }) => {
            if (!(await nodeOf(this.cx, node).portPresent())) {
              parked = "its dongle is unplugged: nothing of it is on the air";
              return parked;
            }
            parked = await this.#park(node, signal);
            return parked;
          },
        },
        {
          key: "lift-fence",
          name: `lift the fence on ${node}`,
          timeoutMs: 10_000,
          run: async () => {
            if (!parked)
              throw new StepFailure(
                `${node}'s coordinator could not be parked and may still run the network: it stays fenced`,
              );
            this.cx.state.update((s) => {
              delete s.fenced[node];
            });
            this.cx.alerts.clear("fence_failed", node);
            return `${node} is reachable again, zigbee2mqtt is stopped and ${parked}: it is a standby like any other`;
          },
        },
      ],
    });
  }

  /** Split-brain guard's action: stop zigbee2mqtt on a node that must not run it. */
  #stopStray(node: string, why: string, trigger = "guard"): OperationRecord {
    const active = this.cx.state.get().active;
    return this.cx.runner.start({
      kind: "fence",
      mutating: true,
      trigger,
      reason: why,
      params: { node, active },
      ctx: {},
      steps: [
        {
          key: "stop-stray",
          name: `stop zigbee2mqtt on ${node}`,
          timeoutMs: 90_000,
          run: async () => {
            try {
              return await stopAndConfirm(this.cx, node);
            } catch (error) {
              throw asStepFailure(error);
            }
          },
        },
        {
          // zigbee2mqtt is stopped, but Z-Stack keeps running a network it started (a fenced old
          // active's, or one a hand-started standby formed or restored): left alone, the chip stays
          // on the air as a second coordinator. A soft reset (parking) makes it hold, NVRAM kept.
          key: "park-stray",
          name: `park the coordinator on ${node}`,
          timeoutMs: 300_000,
          continueOnFailure: true,
          run: ({ signal }) => this.#park(node, signal),
        },
        {
          key: "look-again",
          name: "look again",
          timeoutMs: 30_000,
          run: async () => {
            const status = await this.monitor.probe(node, false);
            if (status.zigbee2mqtt_running) throw new StepFailure(`zigbee2mqtt still runs on ${node}`);
            this.cx.alerts.clear("split_brain", node);
            return `${node}: zigbee2mqtt stopped; ${active ?? "no node"} remains active`;
          },
        },
        {
          // The stray's clean stop left bridge/state "offline" (retained) although the active still
          // runs; restarting the active's zigbee2mqtt republishes its state and info.
          key: "restore-bridge-state",
          name: "restore the active's bridge state",
          timeoutMs: 240_000,
          run: async ({ signal }) => {
            if (!active) return "no active node";
            await new Promise((r) => setTimeout(r, 1000));
            const bridge = this.cx.watcher.status();
            if (bridge.state === "online" && bridge.publishing_node === active)
              return "bridge state is the active's";
            const state = await nodeOf(this.cx, active).serviceState();
            if (state !== "running") return `${active} does not run zigbee2mqtt: left to the failover policy`;
            try {
              await stopAndConfirm(this.cx, active);
              await nodeOf(this.cx, active).startService();
            } catch (error) {
              throw asStepFailure(error);
            }
            return await waitOnline(this.cx, active, {}, 180_000, signal);
          },
        },
      ],
    });
  }

  async close(): Promise<void> {
    this.scheduler.stop();
    this.policy.stop();
    this.monitor.stop();
    await this.cx.watcher.stop();
    await Promise.allSettled([...this.cx.nodes.values()].map((n) => n.close()));
  }
}
