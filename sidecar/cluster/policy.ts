import type { NodeStatus } from "../types.js";
import type { BridgeResponse } from "../z2m/watcher.js";
import type { ClusterContext } from "./context.js";
import type { Monitor } from "./monitor.js";
import { readyStandbys } from "./operations/takeover.js";

/** What the policy can make the cluster do; the facade implements it with real operations. */
export interface PolicyActions {
  restart(node: string, trigger: string, reason: string): void;
  failover(target: string, trigger: string, reason: string): void;
  stopStray(node: string, why: string): void;
  /** A fenced node seen again with zigbee2mqtt stopped: park its coordinator, then lift the fence. */
  releaseFenced(node: string, why: string): void;
}

interface Incident {
  node: string;
  /** First sign of trouble: bridge offline or the first failed probe. */
  since: number;
  /** When MQTT and the probes first agreed that the active is down (the detection). */
  detectedAt: number;
  restarts: number;
  /** Decisions not to act already recorded for this incident (so each is recorded once). */
  recorded: Set<string>;
  evidence: string[];
}

const HOUR = 3_600_000;
/** Operations the policy keeps watching through (they do not touch the active node's service). */
const BACKGROUND = new Set(["sync", "restore-snapshot"]);
const TICK_MS = 500;
const HEALTH_CHECK_TIMEOUT_MS = 2_500;
/** How long bridge/state must stay offline under a running zigbee2mqtt before it counts as stale. */
const STALE_STATE_MS = 5_000;
/** Between two attempts to put a stale bridge/state right. */
const STALE_STATE_RETRY_MS = 10_000;
/** Between two attempts to release one fenced node whose coordinator could not be parked. */
const RELEASE_RETRY_MS = 60_000;

/**
 * Automatic failover. The active is declared down only when zigbee2mqtt is offline on MQTT (its
 * bridge/state, or no answer to a health check when the host went silent) AND the node's probes
 * agree (service not running, or node unreachable), continuously for `failover.grace`. It then
 * restarts zigbee2mqtt in place up to `restart_attempts` times, and only then fails over to the
 * best ready standby, never more often than `cooldown` and `max_per_hour` allow. Every decision,
 * including not acting, goes into the operation history with its evidence.
 */
export class FailoverPolicy {
  #incident: Incident | undefined;
  #timer: NodeJS.Timeout | undefined;
  #failovers: number[] = [];
  #health: { at: number; alive: boolean; pending?: Promise<BridgeResponse> } | undefined;
  #inflight: Promise<void> | undefined;
  #again = false;
  #staleStateTried = 0;
  #releaseTried = new Map<string, number>();

  constructor(
    private readonly cx: ClusterContext,
    private readonly monitor: Monitor,
    private readonly actions: PolicyActions,
  ) {}

  /** Evaluates every `intervalMs` and on every bridge/state change (0: only on changes). */
  start({ intervalMs = TICK_MS }: { intervalMs?: number } = {}): void {
    if (intervalMs > 0) {
      this.#timer = setInterval(() => void this.evaluate(), intervalMs);
      this.#timer.unref();
    }
    this.cx.watcher.on("state", this.#onBridge);
  }

  stop(): void {
    clearInterval(this.#timer);
    this.cx.watcher.off("state", this.#onBridge);
  }

  /** When bridge/state last went offline (not when anything else about the bridge changed). */
  #offlineSince: number | undefined;

  readonly #onBridge = ({ state, at }: { state: "online" | "offline"; at: number }) => {
    this.#offlineSince = state === "offline" ? (this.#offlineSince ?? at) : undefined;
    // A crash is on MQTT at once (the last will); the probes must agree before it counts, and the
    // next one could be an interval away: ask for it now (the next tick, ≤ 0.5 s, sees its result).
    const active = this.cx.state.get().active;
    if (state === "offline" && active) this.monitor.expedite(active);
    void this.evaluate();
  };

  get incident(): Readonly<Incident> | undefined {
    return this.#incident;
  }

  /** Is zigbee2mqtt alive on MQTT? Cached briefly; a health_check asks when bridge/state may be stale. */
  async #mqttAlive(askIfOnline: boolean): Promise<boolean | undefined> {
    const bridge = this.cx.watcher.status();
    if (!bridge.broker_connected) return undefined;
    if (bridge.state === "offline") return false;
    if (!askIfOnline) return true;
    const now = Date.now();
    if (this.#health && now - this.#health.at < 2_000) return this.#health.alive;
    const response = await this.cx.watcher.request("health_check", {}, HEALTH_CHECK_TIMEOUT_MS);
    this.#health = { at: Date.now(), alive: response.status === "ok" };
    return this.#health.alive;
  }

  /**
   * One evaluation at a time; a call during one makes it run once more afterwards, and every
   * caller's promise settles after that final run.
   */
  evaluate(): Promise<void> {
    if (this.#inflight) {
      this.#again = true;
      return this.#inflight;
    }
    this.#inflight = (async () => {
      do {
        this.#again = false;
        try {
          await this.#evaluate();
        } catch (error) {
          this.cx.logger.error({ err: error }, "failover policy evaluation failed");
        }
      } while (this.#again);
    })().finally(() => {
      this.#inflight = undefined;
    });
    return this.#inflight;
  }

  async #evaluate(): Promise<void> {
    const running = this.cx.runner.running;
    // During a takeover, restart or recovery the active is down on purpose: nothing to judge.
    if (running && !BACKGROUND.has(running.kind)) return;
    // A sync or snapshot restore does not stop detection (an incident's clock must run), only
    // actions, which wait for it to end.
    const busy = running !== undefined;
    const state = this.cx.state.get();
    if (!busy) this.#guardSplitBrain(state.active);
    const active = state.active;
    if (!active) return;
    const status = this.monitor.status(active);
    if (!status) return;
    const failures = this.monitor.failures(active);
    const unreachable = status.health === "unreachable";
    const serviceDown = status.zigbee2mqtt_running === false;
    // Two signals together: a host that stopped answering its probes (two in a row, where
    // `monitor.failures` alone would wait for more) and a zigbee2mqtt that does not answer on MQTT.
    const silent = failures.count >= Math.min(2, this.cx.config.monitor.failures);
    const probesSayDown = unreachable || serviceDown || silent;
    // Only a silent host can leave a stale "online" retained on the broker (its last will waits
    // for the keepalive); a reachable host's dead zigbee2mqtt closed its socket, so the will is
    // out at once. Asking a health check when only the service looked stopped made a zigbee2mqtt
    // that had just come back online (and was not answering requests yet) count as down for
    // another 2.5 s, and blocked the policy meanwhile.
    // Asked from the first unanswered probe on, beside the next probes, so both answers are in when
    // the second probe goes unanswered too.
    const mqtt = await this.#mqttAlive(unreachable || failures.count >= 1);
    const bridge = this.cx.watcher.status();

    if (mqtt === undefined) {
      this.cx.alerts.raise(
        "broker_unreachable",
        "warning",
        "the controller cannot see the MQTT broker: it cannot see the bridge",
      );
    } else {
      this.cx.alerts.clear("broker_unreachable");
    }
    const down = mqtt === false && probesSayDown;
    if (!down) {
      if (this.#incident) {
        this.cx.runner.record(
          "decision",
          "policy",
          "succeeded",
          { node: this.#incident.node },
          {
            decision: "recovered",
            detail: `${this.#incident.node} is healthy again after ${Math.round((Date.now() - this.#incident.since) / 1000)}s`,
          },
        );
        this.#incident = undefined;
      }
      // No incident, so no active that is down: alerts of an earlier one (also one that ended in
      // a failover, which leaves the old active's alert behind) are over.
      this.#clearIncidentAlerts();
      await this.#repairStaleState(active, status, unreachable);
      return;
    }

    if (bridge.state === "offline") this.#offlineSince ??= Date.now();
    const evidence = [
      bridge.state === "offline"
        ? `bridge/state offline since ${new Date(this.#offlineSince ?? Date.now()).toISOString()}`
        : "no answer to bridge/request/health_check",
      unreachable || silent
        ? `${failures.count} probes in a row unanswered`
        : `service status says zigbee2mqtt is not running (${status.reason})`,
    ];
    const firstSign = Math.min(
      failures.since ?? Number.POSITIVE_INFINITY,
      bridge.state === "offline" ? (this.#offlineSince ?? Date.now()) : Number.POSITIVE_INFINITY,
      Date.now(),
    );
    if (!this.#incident || this.#incident.node !== active) {
      this.#incident = {
        node: active,
        since: firstSign,
        detectedAt: Date.now(),
        restarts: 0,
        recorded: new Set(),
        evidence,
      };
      this.cx.alerts.raise("active_down", "critical", `${active} looks down: ${evidence.join("; ")}`, active);
    }
    const incident = this.#incident;
    incident.evidence = evidence;
    const elapsed = Date.now() - incident.since;
    const grace = this.cx.config.failover.grace;
    if (elapsed < grace) return;

    const once = (key: string, decision: string, detail: string) => {
      if (incident.recorded.has(key)) return;
      incident.recorded.add(key);
      this.cx.logger.warn({ node: active, decision, detail }, "failover policy");
      this.cx.runner.record(
        "decision",
        "policy",
        "succeeded",
        { node: active, evidence },
        { decision, detail, down_for_ms: elapsed },
      );
    };

    if (state.automation.maintenance)
      return once("maintenance", "not acting", "maintenance mode pauses all automation");
    if (!state.automation.automatic_failover)
      return once("manual", "not acting", "automatic failover is switched off");

    if (busy) {
      // A sync's arming of a standby (up to a minute on a real link) must not hold up the action.
      if (running?.kind === "sync") this.cx.arming.preempt(`${active} is down: the policy acts`);
      return;
    }
    const reachable = !unreachable;
    if (reachable && incident.restarts < this.cx.config.failover.restart_attempts) {
      incident.restarts++;
      const detail = `restart ${incident.restarts} of ${this.cx.config.failover.restart_attempts} in place on ${active}`;
      this.#recordAction(active, "restart in place", detail, evidence, incident);
      this.actions.restart(active, "policy", `${evidence.join("; ")}`);
      // The restart gets its own grace, counted from when it was ordered: a restart that fails
      // after waiting longer than that (for online) is followed by the failover at once.
      incident.since = Date.now();
      return;
    }

    const now = Date.now();
    this.#failovers = this.#failovers.filter((t) => now - t < HOUR);
    const last = this.#failovers.at(-1);
    if (last !== undefined && now - last < this.cx.config.failover.cooldown) {
      return once(
        "cooldown",
        "not acting",
        `last automatic failover ${Math.round((now - last) / 1000)}s ago, cooldown is ${this.cx.config.failover.cooldown / 1000}s`,
      );
    }
    if (this.#failovers.length >= this.cx.config.failover.max_per_hour) {
      return once(
        "cap",
        "not acting",
        `${this.#failovers.length} automatic failovers in the last hour (max_per_hour)`,
      );
    }
    const ready = readyStandbys(this.cx, this.monitor, active);
    const target = ready[0];
    if (!target) {
      const why = [...this.cx.nodes.keys()]
        .filter((id) => id !== active)
        .map((id) => `${id}: ${this.monitor.readiness(id).reasons.join(", ")}`)
        .join("; ");
      this.cx.alerts.raise(
        "no_standby_ready",
        "critical",
        `${active} is down and no standby is ready: ${why}`,
      );
      return once("no-standby", "not acting", `no standby is ready (${why})`);
    }
    this.#failovers.push(now);
    this.#recordAction(active, "failover", `fail over from ${active} to ${target}`, evidence, incident);
    this.actions.failover(target, "policy", `${active} down: ${evidence.join("; ")}`);
    this.#incident = undefined;
  }

  /**
   * A zigbee2mqtt that lost its network (a node cut off, then failed over) leaves a last will
   * with the broker, which publishes it ("offline", retained) only when the keepalive runs out:
   * up to 1.5 keepalives later, often after the new active announced itself online. Home
   * Assistant then shows every zigbee2mqtt entity unavailable although the network runs. When the
   * active's zigbee2mqtt runs, answers a health check and no other node runs one, the "offline"
   * is that stale will: the active's "online" is published again, as zigbee2mqtt words it.
   */
  async #repairStaleState(active: string, status: NodeStatus, unreachable: boolean): Promise<void> {
    const bridge = this.cx.watcher.status();
    if (bridge.state !== "offline" || !bridge.broker_connected) return;
    // bridge/info naming another node is the split-brain guard's case, not a stale will.
    if (bridge.publishing_node !== null && bridge.publishing_node !== active) return;
    if (unreachable || status.zigbee2mqtt_running !== true) return;
    if (this.cx.state.get().automation.maintenance) return;
    if (this.monitor.statuses().some((s) => s.id !== active && s.zigbee2mqtt_running === true)) return;
    const now = Date.now();
    // Also when the retained "offline" came before the policy subscribed (no event to set it).
    this.#offlineSince ??= now;
    const offlineSince = this.#offlineSince;
    if (now - offlineSince < STALE_STATE_MS || now - this.#staleStateTried < STALE_STATE_RETRY_MS) return;
    this.#staleStateTried = now;
    const health = await this.cx.watcher.request("health_check", {}, HEALTH_CHECK_TIMEOUT_MS);
    if (health.status !== "ok" || this.cx.watcher.status().state !== "offline") return;
    try {
      await this.cx.watcher.republishOnline();
    } catch (error) {
      this.cx.logger.warn({ err: error }, "could not republish bridge/state");
      return;
    }
    const detail = `bridge/state said offline for ${Math.round((now - offlineSince) / 1000)}s while zigbee2mqtt runs on ${active} and answers a health check (a last will left by a zigbee2mqtt that is gone): "online" published again`;
    this.cx.logger.warn({ node: active, detail }, "stale bridge state");
    this.cx.runner.record(
      "decision",
      "policy",
      "succeeded",
      { node: active, evidence: [`bridge/state offline since ${new Date(offlineSince).toISOString()}`] },
      { decision: "bridge state restored", detail },
    );
  }

  #clearIncidentAlerts(): void {
    for (const alert of this.cx.alerts.list()) {
      if (alert.kind === "active_down") this.cx.alerts.clear("active_down", alert.node);
    }
    this.cx.alerts.clear("no_standby_ready");
  }

  #recordAction(
    node: string,
    decision: string,
    detail: string,
    evidence: string[],
    incident: Incident,
  ): void {
    const since = incident.since;
    const detectionToActionMs = Date.now() - since;
    this.cx.metrics.detectionSeconds.observe({ cause: decision }, detectionToActionMs / 1000);
    this.cx.runner.record(
      "decision",
      "policy",
      "succeeded",
      { node, evidence },
      {
        decision,
        detail,
        first_sign_at: new Date(since).toISOString(),
        detected_at: new Date(incident.detectedAt).toISOString(),
        detection_to_action_ms: detectionToActionMs,
      },
    );
  }

  /**
   * Split-brain guard: zigbee2mqtt must never run on a node that is not the active one. Seen on a
   * standby (its service, or bridge/info naming it), it is stopped at once and an alert raised.
   */
  #guardSplitBrain(active: string | null): void {
    if (!active) return;
    const bridge = this.cx.watcher.status();
    const fenced = this.cx.state.get().fenced;
    for (const status of this.monitor.statuses()) {
      if (status.id === active) continue;
      if (fenced[status.id] && status.reachable && status.zigbee2mqtt_running === false) {
        // Seen again with zigbee2mqtt stopped. Its chip may still run the network (Z-Stack goes on
        // after zigbee2mqtt is gone, and a node fenced while out of reach was never parked): the
        // fence is lifted once its coordinator is parked, by an operation of its own.
        const tried = this.#releaseTried.get(status.id);
        if (tried !== undefined && Date.now() - tried < RELEASE_RETRY_MS) continue;
        this.#releaseTried.set(status.id, Date.now());
        this.actions.releaseFenced(
          status.id,
          `${status.id} is reachable again and zigbee2mqtt is stopped on it`,
        );
        return;
      }
      this.#releaseTried.delete(status.id);
      const publishing = bridge.state === "online" && bridge.publishing_node === status.id;
      if (status.zigbee2mqtt_running === true || publishing) {
        const why = publishing
          ? `bridge/info is published by ${status.id} (frontend host ${bridge.frontend_host}) while ${active} is active`
          : `zigbee2mqtt runs on ${status.id} while ${active} is active`;
        if (this.cx.state.get().automation.maintenance) {
          // Nothing automatic in maintenance mode, not even this: the operator may be testing.
          this.cx.alerts.raise(
            "split_brain",
            "critical",
            `${why} (maintenance mode: left running)`,
            status.id,
          );
          continue;
        }
        this.cx.alerts.raise("split_brain", "critical", why, status.id);
        this.actions.stopStray(status.id, why);
      } else if (status.zigbee2mqtt_running === false && this.cx.alerts.has("split_brain", status.id)) {
        // Stopped by someone else (by hand, in maintenance mode, where the guard only alerts): the
        // split brain is over. Without this the alert stayed raised for good.
        this.cx.alerts.clear("split_brain", status.id);
      }
    }
  }
}
