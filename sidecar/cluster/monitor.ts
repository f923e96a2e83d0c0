import type { NodeStatus } from "../types.js";
import type { ClusterContext } from "./context.js";
import { deriveStatus, type HealthInput, standbyReadiness } from "./health.js";
import { checksOf, fullProbe, type NodeProbe, quickProbe } from "./probe.js";

interface NodeWatch {
  quick?: NodeProbe;
  full?: NodeProbe;
  failures: number;
  /** Whether any probe has ever reached the node (a node never reached is unreachable at once). */
  everReached?: boolean;
  /** When the current run of failed probes began. */
  failingSince?: number;
  status?: NodeStatus;
  timer?: NodeJS.Timeout;
  lastFullAt: number;
  /** A scheduled probe is running now. */
  probing?: boolean;
  /** Asked to probe again as soon as the running one ends. */
  again?: boolean;
}

/** How often the thorough probe (tools, disk, clock, staged copy) runs besides the quick one. */
const FULL_PROBE_EVERY_MS = 60_000;
/** Between probes of a node whose last probe went unanswered. */
const SUSPECT_INTERVAL_MS = 1_000;

/**
 * Probes every node on its own schedule (a slow node delays no other), keeps the latest results,
 * derives each node's health and publishes `node.changed` when something a user would care about
 * changes.
 */
export class Monitor {
  readonly #watch = new Map<string, NodeWatch>();
  #running = false;

  constructor(private readonly cx: ClusterContext) {
    for (const id of cx.nodes.keys()) this.#watch.set(id, { failures: 0, lastFullAt: 0 });
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    for (const id of this.#watch.keys()) this.#schedule(id, 0);
  }

  stop(): void {
    this.#running = false;
    for (const w of this.#watch.values()) clearTimeout(w.timer);
  }

  #schedule(id: string, delay: number): void {
    const watch = this.#watch.get(id);
    if (!watch || !this.#running) return;
    clearTimeout(watch.timer);
    watch.timer = setTimeout(() => void this.#tick(id), delay);
    watch.timer.unref();
  }

  /**
   * Probes `id` now instead of at its next interval (after the running probe, if one runs): the
   * policy asks when MQTT says zigbee2mqtt went offline, so that a crash is confirmed at once.
   */
  expedite(id: string): void {
    const watch = this.#watch.get(id);
    if (!watch || !this.#running) return;
    if (watch.probing) watch.again = true;
    else this.#schedule(id, 0);
  }

  async #tick(id: string): Promise<void> {
    const watch = this.#watch.get(id);
    if (!watch) return;
    const started = Date.now();
    watch.probing = true;
    watch.again = false;
    try {
      const full = started - watch.lastFullAt >= FULL_PROBE_EVERY_MS;
      await this.probe(id, full);
    } catch (error) {
      this.cx.logger.error({ err: error, node: id }, "probe failed unexpectedly");
    } finally {
      watch.probing = false;
    }
    if (watch.again) {
      this.#schedule(id, 0);
      return;
    }
    const elapsed = Date.now() - started;
    // A node that stopped answering is asked again at once (at most once a second): each
    // unanswered probe already waited probe_timeout, and detection should not wait an interval more.
    const interval =
      watch.failures > 0 && watch.everReached
        ? Math.min(this.cx.config.monitor.probe_interval, SUSPECT_INTERVAL_MS)
        : this.cx.config.monitor.probe_interval;
    this.#schedule(id, Math.max(0, interval - elapsed));
  }

  /** Probes one node now and updates its status; `full` adds tools, disk, clock and the staged copy. */
  async probe(id: string, full = true): Promise<NodeStatus> {
    const watch = this.#watch.get(id);
    if (!watch) throw new Error(`no node ${id}`);
    const probe = full ? await fullProbe(this.cx, id) : await quickProbe(this.cx, id);
    watch.quick = probe;
    if (probe.reachable) {
      watch.everReached = true;
      watch.failures = 0;
      delete watch.failingSince;
      if (full) {
        watch.full = probe;
        watch.lastFullAt = probe.at;
      }
    } else {
      watch.failures++;
      watch.failingSince ??= probe.at;
    }
    return this.refresh(id);
  }

  async probeAll(full = true): Promise<NodeStatus[]> {
    return Promise.all([...this.#watch.keys()].map((id) => this.probe(id, full)));
  }

  #input(id: string): HealthInput {
    const watch = this.#watch.get(id) as NodeWatch;
    return {
      id,
      state: this.cx.state.get(),
      bridge: this.cx.watcher.status(),
      quick: watch.quick,
      failures: watch.failures,
      // One failure in a row is "unreachable" for a node that has never answered.
      failureThreshold: watch.everReached ? this.cx.config.monitor.failures : 1,
      full: watch.full,
      latestSnapshotId: this.cx.snapshots.latestData()?.id,
      stagingMaxAgeMs: this.cx.config.monitor.staging_max_age,
      now: Date.now(),
    };
  }

  /** Re-derives a node's status from what is known (after a state or bridge change), publishing changes. */
  refresh(id: string): NodeStatus {
    const watch = this.#watch.get(id) as NodeWatch;
    const status = deriveStatus(this.#input(id));
    // The latest quick probe over the latest thorough one: tools, disk and clock come from the latter.
    status.checks = watch.quick ? checksOf(this.cx, { ...(watch.full ?? {}), ...watch.quick }) : [];
    const previous = watch.status;
    watch.status = status;
    if (!previous || significant(previous) !== significant(status)) {
      this.cx.bus.publish({
        type: "node.changed",
        node: status,
        ...(previous ? { previous: previous.health } : {}),
      });
    }
    return status;
  }

  refreshAll(): void {
    for (const id of this.#watch.keys()) this.refresh(id);
  }

  status(id: string): NodeStatus | undefined {
    return this.#watch.get(id)?.status;
  }

  statuses(): NodeStatus[] {
    return [...this.#watch.keys()]
      .map((id) => this.#watch.get(id)?.status)
      .filter((s): s is NodeStatus => !!s);
  }

  readiness(id: string) {
    return standbyReadiness(this.#input(id));
  }

  /** Consecutive failed probes and since when (for detection timing). */
  failures(id: string): { count: number; since?: number } {
    const watch = this.#watch.get(id);
    return { count: watch?.failures ?? 0, ...(watch?.failingSince ? { since: watch.failingSince } : {}) };
  }

  lastProbe(id: string): NodeProbe | undefined {
    return this.#watch.get(id)?.quick;
  }
}

/** The parts of a status whose change is worth an event (not latency jitter or timestamps). */
function significant(s: NodeStatus): string {
  return JSON.stringify([
    s.role,
    s.health,
    s.reason,
    s.reachable,
    s.zigbee2mqtt_running,
    s.coordinator_port_present,
    s.tools_present,
  ]);
}
