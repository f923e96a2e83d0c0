/**
 * The Home Assistant add-on's options (/data/options.json, as the Supervisor writes it from the
 * add-on's Configuration tab, schema in addon/config.yaml) turned into the sidecar's config. Pure:
 * the add-on's run command supplies the broker found through the Supervisor and the paths in /data.
 * Problems are reported under the option names the user sees, not the config's.
 */
import { stringify } from "yaml";
import { z } from "zod";
import { describeIssues } from "../config/load.js";
import { duration } from "../config/schema.js";
import { type ServiceManager, serviceCommands } from "../node/service-manager.js";

const nodeId = z
  .string()
  .regex(/^[a-z0-9][a-z0-9_-]{0,31}$/, "use 1-32 lowercase letters, digits, '-' or '_' (e.g. node1)");
const optionalText = z
  .string()
  .optional()
  .transform((value) => (value === undefined || value.trim() === "" ? undefined : value.trim()));
const absolute = optionalText.refine((value) => value === undefined || value.startsWith("/"), {
  message: "must be an absolute path",
});

const addonNode = z.object({
  id: nodeId,
  host: z.string().trim().min(1, "the node's address is required"),
  port: z.number().int().min(1).max(65535).optional(),
  user: optionalText,
  host_key: z
    .string()
    .trim()
    .regex(
      /^SHA256:[A-Za-z0-9+/]{43}=?$/,
      'expected the fingerprint "SHA256:…" that ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub prints on the node',
    ),
  data_dir: absolute,
  staging_dir: absolute,
  coordinator_port: absolute,
  tools: optionalText,
  service_manager: z.enum(["openrc", "systemd"]).optional(),
  frontend_host: optionalText,
  priority: z.number().int().optional(),
});

const durationText = z.string().superRefine((value, ctx) => {
  const parsed = duration.safeParse(value);
  if (!parsed.success)
    ctx.addIssue({ code: "custom", message: `bad duration ${JSON.stringify(value)} (use e.g. 30s, 5m, 1h)` });
});

export const addonOptionsSchema = z
  .object({
    cluster_name: z.string().trim().min(1).max(64).default("home"),
    ssh_user: z.string().trim().min(1).default("zigbee"),
    nodes: z.array(addonNode).min(2, "add at least two zigbee2mqtt nodes (Configuration tab, nodes)"),
    mqtt: z
      .object({
        url: optionalText.refine((u) => u === undefined || /^(mqtts?|wss?|tcp|ssl):\/\//.test(u), {
          message: "expected mqtt://host:1883 or mqtts://host:8883",
        }),
        username: optionalText,
        password: optionalText,
        base_topic: optionalText,
      })
      .prefault({}),
    sync_interval: durationText.default("5m"),
    failover: z
      .object({
        automatic: z.boolean().default(true),
        grace: durationText.default("30s"),
      })
      .prefault({}),
    log_level: z.enum(["fatal", "error", "warn", "info", "debug", "trace"]).default("info"),
    snmp_targets: z
      .array(
        z.object({
          host: z.string().trim().min(1),
          port: z.number().int().min(1).max(65535).optional(),
          community: optionalText,
        }),
      )
      .default([]),
  })
  .superRefine((options, ctx) => {
    const seen = new Map<string, number>();
    options.nodes.forEach((node, index) => {
      const first = seen.get(node.id);
      if (first !== undefined)
        ctx.addIssue({
          code: "custom",
          path: ["nodes", index, "id"],
          message: `"${node.id}" is also nodes[${first}]: give each node its own id`,
        });
      else seen.set(node.id, index);
    });
  });

export type AddonOptions = z.output<typeof addonOptionsSchema>;

export class AddonOptionsError extends Error {
  constructor(readonly problems: string[]) {
    super(
      `the add-on's options are not valid (Configuration tab):\n${problems.map((p) => `  ${p}`).join("\n")}`,
    );
    this.name = "AddonOptionsError";
  }
}

/** Validates what the Supervisor wrote to /data/options.json; throws AddonOptionsError. */
export function parseAddonOptions(raw: unknown): AddonOptions {
  const result = addonOptionsSchema.safeParse(raw, { reportInput: true });
  if (!result.success) throw new AddonOptionsError(describeIssues(result.error));
  return result.data;
}

/** The broker from the Supervisor's MQTT service (GET /services/mqtt). */
export interface SupervisorMqtt {
  host: string;
  port: number;
  ssl: boolean;
  username?: string;
  password?: string;
}

export interface RenderContext {
  /** The SSH private key in /data. */
  privateKey: string;
  stateDir: string;
  /** Used when the options give no mqtt.url. */
  supervisorMqtt?: SupervisorMqtt;
  port?: number;
}

/** The sidecar config (YAML) for the options; throws AddonOptionsError when no broker is known. */
export function renderAddonConfig(options: AddonOptions, context: RenderContext): string {
  const broker = options.mqtt.url
    ? {
        url: options.mqtt.url,
        ...(options.mqtt.username ? { username: options.mqtt.username } : {}),
        ...(options.mqtt.password ? { password: options.mqtt.password } : {}),
      }
    : context.supervisorMqtt
      ? {
          url: `${context.supervisorMqtt.ssl ? "mqtts" : "mqtt"}://${context.supervisorMqtt.host}:${context.supervisorMqtt.port}`,
          ...(context.supervisorMqtt.username ? { username: context.supervisorMqtt.username } : {}),
          ...(context.supervisorMqtt.password ? { password: context.supervisorMqtt.password } : {}),
        }
      : undefined;
  if (!broker)
    throw new AddonOptionsError([
      "mqtt.url: no broker: install the Mosquitto broker add-on (found through the Supervisor) or give mqtt.url",
    ]);
  const config = {
    cluster_name: options.cluster_name,
    state_dir: context.stateDir,
    log_level: options.log_level,
    // Inside the add-on's container: Home Assistant reaches it on the Supervisor's network.
    server: { host: "0.0.0.0", port: context.port ?? 8485 },
    mqtt: { ...broker, base_topic: options.mqtt.base_topic ?? "zigbee2mqtt" },
    nodes: options.nodes.map((node) => {
      const user = node.user ?? options.ssh_user;
      const port = node.coordinator_port ?? "/dev/ttyUSB0";
      const manager: ServiceManager = node.service_manager ?? "openrc";
      return {
        id: node.id,
        ...(node.priority !== undefined ? { priority: node.priority } : {}),
        ssh: {
          host: node.host,
          port: node.port ?? 22,
          user,
          private_key: context.privateKey,
          host_key: node.host_key,
        },
        data_dir: node.data_dir ?? "/opt/zigbee2mqtt/data",
        staging_dir: node.staging_dir ?? `/home/${user}/zigbee2mqtt-ha`,
        coordinator: { port, tools: node.tools ?? "python3 -m zigpy_znp.tools" },
        service: serviceCommands(manager, "zigbee2mqtt"),
        overrides: { "frontend.host": node.frontend_host ?? node.host, "serial.port": port },
      };
    }),
    sync: { interval: options.sync_interval },
    failover: { automatic: options.failover.automatic, grace: options.failover.grace },
    ...(options.snmp_targets.length > 0
      ? {
          snmp: {
            targets: options.snmp_targets.map((t) => ({
              host: t.host,
              port: t.port ?? 162,
              version: "2c",
              community: t.community ?? "public",
            })),
          },
        }
      : {}),
  };
  return `# Written by the zigbee2mqtt-ha add-on from its options at every start; edit the options, not this.\n${stringify(config, { lineWidth: 0 })}`;
}
