import { Cron } from "croner";
import type { ClusterContext } from "./context.js";
import type { Monitor } from "./monitor.js";
import { readyStandbys } from "./operations/takeover.js";

export interface SchedulerActions {
  sync(trigger: string, reason: string): void;
  switchover(target: string, trigger: string, reason: string): void;
}

const RETRY_BUSY_MS = 5_000;
/**
 * A standby's return syncs at most this often: a flapping link would otherwise start a sync at
 * every return, each one able to hold up a failover while it waits on that node's SSH.
 */
const BACK_SYNC_GAP_MS = 5 * 60_000;

/**
 * Time-driven automation: a sync every `sync.interval`, a debounced sync soon after zigbee2mqtt
 * reports a change (device joined, renamed, removed) and one when a standby comes back from out
 * of reach, and the optional scheduled switchover that keeps every dongle's copy of the network
 * exercised. All of it pauses in maintenance mode.
 */
export class Scheduler {
  #interval: NodeJS.Timeout | undefined;
  #debounce: NodeJS.Timeout | undefined;
  #retry: NodeJS.Timeout | undefined;
  #cron: Cron | undefined;
  #pendingReason: string | undefined;
  #waitingForActive = false;
  readonly #backSyncAt = new Map<string, number>();
  #unsubscribe: (() => void) | undefined;

  constructor(
    private readonly cx: ClusterContext,
    private readonly monitor: Monitor,
    private readonly actions: SchedulerActions,
  ) {}

  /**
   * The first sync runs at once: until it has staged a standby the cluster is not protected (a
   * failover has nothing to restore from). With no active node known yet, it runs as soon as one is.
   */
  start(initialDelayMs = 0): void {
    const { sync, schedule } = this.cx.config;
    this.#interval = setInterval(() => this.#requestSync("scheduled sync"), sync.interval);
    this.#interval.unref();
    const first = setTimeout(() => this.#requestSync("first sync after start-up"), initialDelayMs);
    first.unref();
    this.#retry = first;
    this.#unsubscribe = this.cx.bus.subscribe((event) => {
      // A takeover that did not succeed took a final snapshot of the active's data dir that only
      // its target got (or none): the other standbys are behind until the next sync. Now, then.
      if (
        event.type === "operation.finished" &&
        (event.operation.kind === "switchover" || event.operation.kind === "failover") &&
        event.operation.status !== "succeeded" &&
        !event.operation.result?.committed
      ) {
        this.#requestSync(
          `the ${event.operation.kind} ${event.operation.id} ended ${event.operation.status}`,
        );
        return;
      }
      // A standby that was out of reach (or fenced) missed the syncs meanwhile: after a failover
      // it is the old active, the cluster's only way back, so it is staged now, not at the next
      // sync.interval (5 min by default). Once per BACK_SYNC_GAP_MS and node.
      if (
        event.type === "node.changed" &&
        (event.previous === "unreachable" || event.previous === "fenced") &&
        event.node.health === "standby-not-ready"
      ) {
        const last = this.#backSyncAt.get(event.node.id);
        if (last !== undefined && Date.now() - last < BACK_SYNC_GAP_MS) return;
        this.#backSyncAt.set(event.node.id, Date.now());
        this.#requestSync(
          `${event.node.id} is back (${event.previous} before), not ready: ${event.node.reason}`,
        );
        return;
      }
      if (event.type !== "state.changed" || !event.state.active || !this.#waitingForActive) return;
      this.#waitingForActive = false;
      this.#requestSync("first sync: an active node is known");
    });
    this.cx.watcher.on("data-changed", this.#onDataChanged);
    if (schedule.switchover) {
      this.#cron = new Cron(schedule.switchover, { protect: true, unref: true }, () =>
        this.#scheduledSwitchover(),
      );
    }
  }

  stop(): void {
    this.#unsubscribe?.();
    clearInterval(this.#interval);
    clearTimeout(this.#debounce);
    clearTimeout(this.#retry);
    this.#cron?.stop();
    this.cx.watcher.off("data-changed", this.#onDataChanged);
  }

  nextSwitchover(): Date | null {
    return this.#cron?.nextRun() ?? null;
  }

  readonly #onDataChanged = ({ topic }: { topic: string }) => {
    clearTimeout(this.#debounce);
    this.#debounce = setTimeout(
      () => this.#requestSync(`zigbee2mqtt reported a change (${topic})`),
      this.cx.config.sync.debounce,
    );
    this.#debounce.unref();
  };

  #paused(): string | undefined {
    const state = this.cx.state.get();
    if (state.automation.maintenance) return "maintenance mode";
    if (!state.active) return "no active node";
    return undefined;
  }

  #requestSync(reason: string): void {
    const paused = this.#paused();
    if (paused) {
      if (paused === "no active node" && !this.cx.state.get().last_sync) this.#waitingForActive = true;
      return;
    }
    if (this.cx.runner.running) {
      // Busy with another operation: try again shortly rather than skip a change.
      this.#pendingReason = reason;
      clearTimeout(this.#retry);
      this.#retry = setTimeout(() => this.#requestSync(this.#pendingReason ?? reason), RETRY_BUSY_MS);
      this.#retry.unref();
      return;
    }
    this.#pendingReason = undefined;
    this.actions.sync("schedule", reason);
  }

  #scheduledSwitchover(): void {
    const paused = this.#paused();
    const active = this.cx.state.get().active;
    const record = (detail: string) =>
      this.cx.runner.record(
        "decision",
        "schedule",
        "succeeded",
        { schedule: this.cx.config.schedule.switchover },
        {
          decision: "scheduled switchover skipped",
          detail,
        },
      );
    if (paused) return void record(paused);
    if (this.cx.runner.running)
      return void record(`another operation is running (${this.cx.runner.running.id})`);
    const target = readyStandbys(this.cx, this.monitor, active)[0];
    if (!target) return void record("no standby is ready");
    this.actions.switchover(target, "schedule", "scheduled switchover");
  }
}
