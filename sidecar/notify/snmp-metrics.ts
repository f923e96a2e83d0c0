import { Counter, Gauge, type Registry } from "prom-client";

export interface SnmpMetrics {
  sent: Counter<"target" | "mib" | "notification">;
  failed: Counter<"target" | "mib" | "notification">;
  dropped: Counter<"target" | "reason">;
  queueDepth: Gauge<"target">;
}

/** Reuses metrics already on the registry, so a notifier rebuilt on the same registry does not throw. */
function once<T>(registry: Registry, name: string, make: () => T): T {
  return (registry.getSingleMetric(name) as T | undefined) ?? make();
}

export function createSnmpMetrics(registry: Registry): SnmpMetrics {
  const registers = [registry];
  return {
    sent: once(
      registry,
      "z2mha_snmp_notifications_sent_total",
      () =>
        new Counter({
          name: "z2mha_snmp_notifications_sent_total",
          help: "SNMP notifications sent: traps handed to the network, informs acknowledged by the receiver",
          labelNames: ["target", "mib", "notification"] as const,
          registers,
        }),
    ),
    failed: once(
      registry,
      "z2mha_snmp_notifications_failed_total",
      () =>
        new Counter({
          name: "z2mha_snmp_notifications_failed_total",
          help: "SNMP notifications that could not be sent, or informs never acknowledged after all retries",
          labelNames: ["target", "mib", "notification"] as const,
          registers,
        }),
    ),
    dropped: once(
      registry,
      "z2mha_snmp_notifications_dropped_total",
      () =>
        new Counter({
          name: "z2mha_snmp_notifications_dropped_total",
          help: "SNMP notifications discarded unsent: queue full (oldest dropped) or notifier stopped",
          labelNames: ["target", "reason"] as const,
          registers,
        }),
    ),
    queueDepth: once(
      registry,
      "z2mha_snmp_queue_depth",
      () =>
        new Gauge({
          name: "z2mha_snmp_queue_depth",
          help: "SNMP notifications waiting for their target, not counting the one being sent",
          labelNames: ["target"] as const,
          registers,
        }),
    ),
  };
}
