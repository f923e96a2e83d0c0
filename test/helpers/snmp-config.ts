import { type Config, configSchema, type SnmpConfig } from "../../sidecar/config/schema.js";

const HOST_KEY = `SHA256:${"A".repeat(43)}`;

/** A complete, valid config around the given `snmp` section (two dummy nodes, a local broker). */
export function configWithSnmp(snmp: unknown, extra: Record<string, unknown> = {}): Config {
  return configSchema.parse({
    mqtt: { url: "mqtt://127.0.0.1:1883" },
    nodes: ["node1", "node2"].map((id) => ({
      id,
      ssh: { host: "127.0.0.1", user: "zigbee", private_key: "/dev/null", host_key: HOST_KEY },
      staging_dir: "/tmp/staging",
    })),
    snmp,
    ...extra,
  });
}

/** The parsed `snmp` section, defaults applied, as the notifier receives it. */
export function snmpConfig(snmp: unknown): SnmpConfig {
  const parsed = configWithSnmp(snmp).snmp;
  if (!parsed) throw new Error("no snmp section");
  return parsed;
}
