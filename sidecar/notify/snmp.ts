import { isIPv6 } from "node:net";
import type { Logger } from "pino";
import type { Registry } from "prom-client";
import type { Config, SnmpConfig, SnmpTargetConfig } from "../config/schema.js";
import type { ClusterEvent, ClusterState } from "../types.js";
import type { EventBus } from "./bus.js";
import { NotificationMapper } from "./snmp-events.js";
import { createSnmpMetrics, type SnmpMetrics } from "./snmp-metrics.js";
import { DEFAULT_ENTERPRISE_OID } from "./snmp-mib.js";
import { TargetQueue } from "./snmp-queue.js";
import { createNetSnmpSender, deriveEngineId, type SenderFactory } from "./snmp-session.js";
import { type OutgoingNotification, toMibNotification, toPrototypeTrap } from "./snmp-varbinds.js";

export interface SnmpNotifierDeps {
  clusterName: string;
  bus: EventBus;
  registry: Registry;
  logger: Logger;
  /** Replaces the net-snmp sessions; unit tests pass a fake. */
  createSender?: SenderFactory;
  /** How long stop() waits for queued notifications before dropping them; default 2 s. */
  stopDeadlineMs?: number;
  /**
   * The persisted cluster state at start-up. Without it the first state.changed event only
   * sets the baseline, and an automation change it carries goes unreported.
   */
  initialState?: ClusterState;
}

export interface SnmpNotifierOptions extends SnmpNotifierDeps {
  config: SnmpConfig;
}

/** The label a target has in metrics and logs: its name, or host:port ([v6]:port). */
export function targetLabel(target: SnmpTargetConfig): string {
  if (target.name) return target.name;
  return isIPv6(target.host) ? `[${target.host}]:${target.port}` : `${target.host}:${target.port}`;
}

interface Target {
  label: string;
  config: SnmpTargetConfig;
  engineId: string;
  queue: TargetQueue;
  failing: boolean;
}

/**
 * Sends SNMP notifications for cluster events to every configured target. Listening to the bus
 * only maps the event and appends to per-target queues; the sending happens later, one
 * notification at a time per target, so a slow or dead receiver delays no operation and an
 * error never reaches the publisher. Outcomes are counted in the registry (z2mha_snmp_*).
 */
export class SnmpNotifier {
  readonly enterpriseOid: string;
  readonly #config: SnmpConfig;
  readonly #deps: SnmpNotifierDeps;
  readonly #log: Logger;
  readonly #metrics: SnmpMetrics;
  readonly #mapper: NotificationMapper;
  readonly #targets: Target[];
  #unsubscribe: (() => void) | undefined;

  constructor(options: SnmpNotifierOptions) {
    const { config, ...deps } = options;
    this.#config = config;
    this.#deps = deps;
    this.enterpriseOid = config.enterprise_oid ?? DEFAULT_ENTERPRISE_OID;
    this.#log = deps.logger.child({ module: "snmp" });
    this.#metrics = createSnmpMetrics(deps.registry);
    this.#mapper = new NotificationMapper(deps.clusterName, deps.initialState);
    const derivedEngineId = deriveEngineId(this.enterpriseOid, deps.clusterName);
    const createSender =
      deps.createSender ??
      ((target: SnmpTargetConfig, engineId: string) =>
        createNetSnmpSender(target, engineId, (error) =>
          this.#log.debug({ target: targetLabel(target), err: error }, "unparseable SNMP datagram ignored"),
        ));
    this.#targets = config.targets.map((targetConfig) => {
      const label = targetLabel(targetConfig);
      const engineId = targetConfig.user?.engine_id?.toLowerCase() ?? derivedEngineId;
      const target: Target = {
        label,
        config: targetConfig,
        engineId,
        failing: false,
        queue: new TargetQueue({
          capacity: config.queue_size,
          deadlineMs: targetConfig.inform
            ? targetConfig.timeout * (targetConfig.retries + 1) + 1_000
            : targetConfig.timeout + 1_000,
          createSender: () => createSender(targetConfig, engineId),
          events: {
            sent: (n) => {
              this.#metrics.sent.inc({ target: label, mib: n.mib, notification: n.name });
              if (target.failing) {
                target.failing = false;
                this.#log.info({ target: label }, "SNMP target reachable again");
              }
            },
            failed: (n, error) => {
              this.#metrics.failed.inc({ target: label, mib: n.mib, notification: n.name });
              const fields = { target: label, notification: n.name, mib: n.mib, error: error.message };
              // Warn when a target starts failing, not for every notification while it stays down.
              if (target.failing) this.#log.debug(fields, "SNMP notification failed");
              else this.#log.warn(fields, "SNMP notification failed");
              target.failing = true;
            },
            dropped: (n, reason) => {
              this.#metrics.dropped.inc({ target: label, reason });
              this.#log.debug({ target: label, notification: n.name, reason }, "SNMP notification dropped");
            },
            depth: (waiting) => this.#metrics.queueDepth.set({ target: label }, waiting),
          },
        }),
      };
      this.#metrics.queueDepth.set({ target: label }, 0);
      return target;
    });
  }

  /** Labels of the targets, in configuration order (as they appear in metrics). */
  get targets(): string[] {
    return this.#targets.map((t) => t.label);
  }

  /** The SNMPv3 engine id each v3 target's notifications carry (hex), for the receiver's createUser -e. */
  get engineIds(): Record<string, string> {
    return Object.fromEntries(
      this.#targets.filter((t) => t.config.version === "3").map((t) => [t.label, t.engineId]),
    );
  }

  start(): void {
    if (this.#unsubscribe) return;
    this.#unsubscribe = this.#deps.bus.subscribe((event) => this.notify(event));
    this.#log.info(
      {
        enterprise_oid: this.enterpriseOid,
        prototype_compat: this.#config.prototype_compat,
        targets: this.#targets.map((t) => ({
          target: t.label,
          version: t.config.version,
          inform: t.config.inform,
          ...(t.config.version === "3" ? { user: t.config.user?.name, engine_id: t.engineId } : {}),
        })),
      },
      "SNMP notifications enabled",
    );
  }

  /**
   * Maps one event and queues the resulting notifications; returns without waiting for any
   * network I/O and never throws. The bus listener calls this.
   */
  notify(event: ClusterEvent): void {
    try {
      const notification = this.#mapper.map(event);
      if (!notification) return;
      const outgoing: OutgoingNotification[] = [];
      if (this.#config.prototype_compat !== "only") {
        outgoing.push(toMibNotification(this.enterpriseOid, notification));
      }
      if (this.#config.prototype_compat !== "off") outgoing.push(toPrototypeTrap(notification));
      for (const target of this.#targets) for (const n of outgoing) target.queue.push(n);
    } catch (error) {
      this.#log.error({ err: error, event: event.type }, "SNMP notifier could not handle an event");
    }
  }

  /** Stops listening, gives queued notifications a short time to go out, then closes the sessions. */
  async stop(): Promise<void> {
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
    const deadline = this.#deps.stopDeadlineMs ?? 2_000;
    await Promise.all(this.#targets.map((t) => t.queue.drain(deadline)));
    for (const target of this.#targets) target.queue.close();
  }
}

/** The one entry point for the sidecar's start-up: undefined when the config has no snmp section. */
export function createSnmpNotifier(config: Config["snmp"], deps: SnmpNotifierDeps): SnmpNotifier | undefined {
  return config ? new SnmpNotifier({ config, ...deps }) : undefined;
}
