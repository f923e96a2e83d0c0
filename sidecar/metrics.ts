import { collectDefaultMetrics, Registry } from "prom-client";

/**
 * One Prometheus registry per sidecar instance (tests build several in one process). Modules
 * register their own metrics on the registry they are given; /metrics serialises it.
 */
export function createRegistry(): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ service: "zigbee2mqtt-ha" });
  collectDefaultMetrics({ register: registry, prefix: "z2mha_process_" });
  return registry;
}

export type { Registry };
