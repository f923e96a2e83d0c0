import { readFileSync } from "node:fs";
import { Cron } from "croner";
import { z } from "zod";
import { splitCommand } from "./argv.js";
import { parseDuration } from "./duration.js";
import { Secret } from "./secret.js";
import { parseSize } from "./size.js";

/** "30s", "5m", "1h30m", or a number of seconds; becomes milliseconds. */
export const duration = z.union([z.string(), z.number()]).transform((value, ctx) => {
  const ms = parseDuration(value);
  if (ms === undefined) {
    ctx.addIssue({
      code: "custom",
      message: `bad duration ${JSON.stringify(value)} (use e.g. 500ms, 30s, 5m, 1h)`,
    });
    return z.NEVER;
  }
  return ms;
});

/** "64MiB", "1GiB", "500MB", or a number of bytes. */
export const size = z.union([z.string(), z.number()]).transform((value, ctx) => {
  const bytes = parseSize(value);
  if (bytes === undefined) {
    ctx.addIssue({
      code: "custom",
      message: `bad size ${JSON.stringify(value)} (use e.g. 64MiB, 1GiB, 500MB or a number of bytes)`,
    });
    return z.NEVER;
  }
  return bytes;
});

/**
 * A secret given inline, read from a file (trailing newline stripped) or taken from the environment.
 * Resolved once at load time; what comes out is a Secret that prints as redacted.
 */
export const secret = z
  .union([
    z.string().min(1),
    z.strictObject({ file: z.string().min(1) }),
    z.strictObject({ env: z.string().min(1) }),
  ])
  .transform((value, ctx) => {
    if (typeof value === "string") return new Secret(value);
    if ("file" in value) {
      try {
        return new Secret(readFileSync(value.file, "utf8").replace(/\r?\n$/, ""));
      } catch (error) {
        ctx.addIssue({
          code: "custom",
          message: `cannot read secret file ${value.file}: ${(error as Error).message}`,
        });
        return z.NEVER;
      }
    }
    const fromEnv = process.env[value.env];
    if (fromEnv === undefined || fromEnv === "") {
      ctx.addIssue({ code: "custom", message: `environment variable ${value.env} is not set` });
      return z.NEVER;
    }
    return new Secret(fromEnv);
  });

/** A command run on a node: a list of arguments, or one string split like a shell would, without operators. */
export const command = z.union([z.string(), z.array(z.string()).min(1)]).transform((value, ctx) => {
  if (Array.isArray(value)) return value;
  const split = splitCommand(value);
  if ("error" in split) {
    ctx.addIssue({ code: "custom", message: split.error });
    return z.NEVER;
  }
  return split.argv;
});

const nodeId = z
  .string()
  .regex(
    /^[a-z0-9][a-z0-9_-]{0,31}$/,
    "use 1-32 lowercase letters, digits, '-' or '_', starting with a letter or digit",
  );

const absolutePath = z.string().regex(/^\//, "must be an absolute path");

/** A serial device on the node, or a network-attached coordinator (one TCP client at a time). */
const coordinatorPort = z
  .string()
  .regex(
    /^(\/|tcp:\/\/[^\s/:]+:\d{1,5}$)/,
    "must be an absolute path (a /dev/serial/by-id/… link) or tcp://host:port",
  );

/**
 * A directory the sidecar writes into and deletes from on a node: absolute, normalised (no "."
 * or ".." parts, no doubled or trailing "/"), and never the root or a top-level system directory,
 * which a typo (`data_dir: /`) would otherwise make the sidecar walk and prune.
 */
const TOP_LEVEL = new Set([
  "/bin",
  "/boot",
  "/dev",
  "/etc",
  "/home",
  "/lib",
  "/lib64",
  "/opt",
  "/proc",
  "/root",
  "/run",
  "/sbin",
  "/srv",
  "/sys",
  "/tmp",
  "/usr",
  "/var",
  "/mnt",
  "/media",
]);
const nodeDir = absolutePath.superRefine((path, ctx) => {
  if (path === "/" || TOP_LEVEL.has(path.replace(/\/+$/, ""))) {
    ctx.addIssue({
      code: "custom",
      message: `${path} is a system directory, not a zigbee2mqtt data or staging dir`,
    });
    return;
  }
  if (path.length > 1 && path.endsWith("/")) ctx.addIssue({ code: "custom", message: "must not end with /" });
  else if (
    path
      .split("/")
      .slice(1)
      .some((part) => part === "" || part === "." || part === "..")
  )
    ctx.addIssue({ code: "custom", message: "must be a normalised path (no //, . or .. parts)" });
  else if (/[\0\n\r]/.test(path))
    ctx.addIssue({ code: "custom", message: "must not contain control characters" });
});

/** Whether `inner` is `outer` or lies below it. */
export function within(inner: string, outer: string): boolean {
  return inner === outer || inner.startsWith(`${outer}/`);
}

/** The API token's minimum length: shorter is guessable, or a placeholder left in a config. */
export const MIN_TOKEN_LENGTH = 16;

/** Frame counters are 32 bits; an increment this large would eat a network's lifetime in one restore. */
export const MAX_FRAME_COUNTER_INCREMENT = 1_000_000;

const hostKey = z
  .string()
  .regex(/^SHA256:[A-Za-z0-9+/]{43}=?$/, 'expected an OpenSSH fingerprint like "SHA256:…" (ssh-keygen -lf)');

const overrideValue = z.union([z.string(), z.number(), z.boolean(), z.null()]);

const sshSchema = z.strictObject({
  host: z.string().min(1),
  port: z.number().int().min(1).max(65535).default(22),
  user: z.string().min(1),
  private_key: z.string().min(1),
  passphrase: secret.optional(),
  host_key: hostKey,
  connect_timeout: duration.default(10_000),
  keepalive_interval: duration.default(5_000),
});

const nodeSchema = z
  .strictObject({
    id: nodeId,
    ssh: sshSchema,
    data_dir: nodeDir.default("/opt/zigbee2mqtt/data"),
    staging_dir: nodeDir,
    coordinator: z
      .strictObject({
        /**
         * How the coordinator's state moves between dongles (docs/coordinators.md):
         * zstack-nvram copies a TI Z-Stack dongle's whole NVRAM with zigpy-znp's tools;
         * z2m-backup moves zigbee2mqtt's coordinator_backup.json and lets zigbee2mqtt restore it.
         */
        type: z.enum(["zstack-nvram", "z2m-backup"]).default("zstack-nvram"),
        /** zigbee2mqtt's serial.adapter on this node (z2m-backup only: which host tool parks and wipes). */
        adapter: z.enum(["zstack", "ember"]).default("zstack"),
        port: coordinatorPort.default("/dev/ttyUSB0"),
        /** Serial line of an ember dongle (as zigbee2mqtt's serial.baudrate and serial.rtscts). */
        baudrate: z.number().int().positive().default(115200),
        rtscts: z.boolean().default(false),
        // No sudo: the SSH user is in dialout and owns the serial port (docs/nodes.md); a stolen
        // key must not get root through `nvram_read -o /any/path`. For an ember adapter: the
        // interpreter that runs the sidecar's own host tool (node), uploaded into staging_dir.
        tools: command.optional(),
        tool_timeout: duration.default(180_000),
      })
      .superRefine((coordinator, ctx) => {
        if (coordinator.type === "zstack-nvram" && coordinator.adapter !== "zstack")
          ctx.addIssue({
            code: "custom",
            path: ["adapter"],
            message: `zstack-nvram copies a Z-Stack dongle's NVRAM: use type z2m-backup for an ${coordinator.adapter} adapter`,
          });
      })
      .transform(({ tools, ...coordinator }) => ({
        ...coordinator,
        tools: tools ?? (coordinator.adapter === "ember" ? ["node"] : ["python3", "-m", "zigpy_znp.tools"]),
      }))
      .prefault({}),
    service: z
      .strictObject({
        start: command.default(["sudo", "rc-service", "zigbee2mqtt", "start"]),
        stop: command.default(["sudo", "rc-service", "zigbee2mqtt", "stop"]),
        status: command.default(["sudo", "rc-service", "zigbee2mqtt", "status"]),
        timeout: duration.default(60_000),
      })
      .prefault({}),
    /** Dotted paths in configuration.yaml that differ per node, e.g. frontend.host and serial.port. */
    overrides: z
      .record(
        z.string().regex(/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/, "expected a dotted path"),
        overrideValue,
      )
      .default({}),
    /** Lower is preferred when choosing a standby. */
    priority: z.number().int().default(100),
  })
  .superRefine((node, ctx) => {
    if (within(node.staging_dir, node.data_dir))
      ctx.addIssue({
        code: "custom",
        path: ["staging_dir"],
        message: `must not be inside data_dir (${node.data_dir}): it would be copied and pruned with it`,
      });
    else if (within(node.data_dir, node.staging_dir))
      ctx.addIssue({
        code: "custom",
        path: ["data_dir"],
        message: `must not be inside staging_dir (${node.staging_dir})`,
      });
  });

const snmpV3User = z.strictObject({
  name: z.string().min(1),
  level: z.enum(["noAuthNoPriv", "authNoPriv", "authPriv"]).default("authPriv"),
  auth_protocol: z.enum(["md5", "sha", "sha224", "sha256", "sha384", "sha512"]).default("sha"),
  auth_key: secret.optional(),
  priv_protocol: z.enum(["des", "aes", "aes256b", "aes256r"]).default("aes"),
  priv_key: secret.optional(),
  /**
   * Engine id our SNMPv3 traps carry (the receiver's `createUser -e`). Default: derived from the
   * MIB root's enterprise number and cluster_name, stable across restarts, logged at start-up.
   * Informs ignore it: they discover the receiver's engine.
   */
  engine_id: z
    .string()
    .regex(/^(0x)?([0-9a-fA-F]{2}){5,32}$/, "hex, 5 to 32 bytes")
    .transform((hex) => hex.replace(/^0x/, "").toLowerCase())
    .optional(),
});

/** USM keys are localized from pass phrases; RFC 3414 and Net-SNMP require at least 8 characters. */
const MIN_USM_PASSPHRASE = 8;

/** Dotted OID under enterprises whose sub-identifiers fit SNMP's 32 bits. */
const enterpriseOid = z
  .string()
  .regex(/^1\.3\.6\.1\.4\.1(\.(0|[1-9]\d*))+$/, "expected an OID under 1.3.6.1.4.1, e.g. 1.3.6.1.4.1.N")
  .refine((oid) => oid.split(".").every((part) => Number(part) <= 0xffff_ffff), {
    message: "every sub-identifier must be at most 4294967295",
  });

const snmpTarget = z
  .strictObject({
    /** Label in metrics and logs; defaults to host:port. */
    name: z
      .string()
      .regex(/^[A-Za-z0-9._:-]{1,64}$/, "use 1-64 letters, digits, '.', '_', ':' or '-'")
      .optional(),
    host: z.string().min(1),
    port: z.number().int().min(1).max(65535).default(162),
    /** YAML reads an unquoted `version: 3` as a number; accept it as "3". */
    version: z.preprocess((v) => (typeof v === "number" ? String(v) : v), z.enum(["2c", "3"])).default("2c"),
    community: secret.optional(),
    inform: z.boolean().default(false),
    retries: z.number().int().min(0).max(10).default(2),
    timeout: duration.default(2_000),
    user: snmpV3User.optional(),
  })
  .superRefine((target, ctx) => {
    if (target.version === "3" && !target.user) {
      ctx.addIssue({ code: "custom", path: ["user"], message: "required for SNMPv3" });
    }
    if (target.user?.level !== "noAuthNoPriv" && target.user && !target.user.auth_key) {
      ctx.addIssue({
        code: "custom",
        path: ["user", "auth_key"],
        message: `required for ${target.user.level}`,
      });
    }
    if (target.user?.level === "authPriv" && !target.user.priv_key) {
      ctx.addIssue({ code: "custom", path: ["user", "priv_key"], message: "required for authPriv" });
    }
    for (const key of ["auth_key", "priv_key"] as const) {
      const value = target.user?.[key];
      if (value && value.reveal().length < MIN_USM_PASSPHRASE) {
        ctx.addIssue({
          code: "custom",
          path: ["user", key],
          message: `must be at least ${MIN_USM_PASSPHRASE} characters (RFC 3414)`,
        });
      }
    }
    if (target.version === "2c" && target.user) {
      ctx.addIssue({ code: "custom", path: ["user"], message: 'only for version "3"' });
    }
    if (target.version === "3" && target.community) {
      ctx.addIssue({ code: "custom", path: ["community"], message: 'only for version "2c"' });
    }
  });

export const configSchema = z
  .strictObject({
    cluster_name: z.string().min(1).max(64).default("zigbee2mqtt"),
    state_dir: absolutePath.default("/var/lib/zigbee2mqtt-ha"),
    log_level: z.enum(["fatal", "error", "warn", "info", "debug", "trace"]).default("info"),
    server: z
      .strictObject({
        host: z.string().min(1).default("127.0.0.1"),
        port: z.number().int().min(0).max(65535).default(8485),
        token: secret
          .refine((t) => t.reveal().length >= MIN_TOKEN_LENGTH, {
            message: `must be at least ${MIN_TOKEN_LENGTH} characters`,
          })
          .optional(),
        /** Where the generated token is kept; defaults to <state_dir>/token. */
        token_file: absolutePath.optional(),
        /**
         * HTTPS for the API: `self_signed` makes (once) a certificate kept in <state_dir>/tls,
         * whose SHA-256 fingerprint the log and `z2m-ha info` show; or give cert and key files.
         */
        tls: z
          .union([z.literal("self_signed"), z.strictObject({ cert: absolutePath, key: absolutePath })])
          .optional(),
        /** A request (headers and body) must arrive within this; slow clients are cut off. */
        request_timeout: duration.default(10_000),
        /** A connection with no traffic at all is closed after this (the event stream sends a heartbeat). */
        idle_timeout: duration.default(60_000),
        /** Open connections at most (event-stream clients included); more are refused. */
        max_connections: z.number().int().min(4).max(10_000).default(64),
        /** Event-stream clients at most. */
        max_event_clients: z.number().int().min(1).max(1000).default(16),
        /** mDNS announcement (_zigbee2mqtt-ha._tcp) so Home Assistant discovers the sidecar. */
        zeroconf: z.boolean().default(true),
      })
      .prefault({}),
    storage: z
      .strictObject({
        /** Below this much free space in state_dir no mutating operation starts. */
        min_free: size.default(32 * 1024 * 1024),
        /** The snapshots together may take this much; the oldest unpinned go first. */
        snapshots_max_bytes: size.default(256 * 1024 * 1024),
      })
      .prefault({}),
    mqtt: z.strictObject({
      url: z.string().regex(/^(mqtts?|wss?|tcp|ssl):\/\//, "expected mqtt://host:port or mqtts://…"),
      username: z.string().optional(),
      password: secret.optional(),
      base_topic: z.string().min(1).default("zigbee2mqtt"),
      client_id: z.string().optional(),
      keepalive: duration.default(10_000),
    }),
    nodes: z.array(nodeSchema).min(2, "at least two nodes are needed for high availability"),
    sync: z
      .strictObject({
        interval: duration.default(300_000),
        debounce: duration.default(10_000),
        exclude: z.array(z.string().min(1)).default(["log", "ota"]),
        keep: z.number().int().min(1).default(10),
        backup_timeout: duration.default(10_000),
        /** Ask zigbee2mqtt for a fresh coordinator_backup.json at most this often (each scheduled sync, by default). */
        backup_refresh: duration.default(240_000),
      })
      .prefault({}),
    failover: z
      .strictObject({
        automatic: z.boolean().default(true),
        grace: duration.default(30_000),
        restart_attempts: z.number().int().min(0).max(10).default(1),
        cooldown: duration.default(600_000),
        max_per_hour: z.number().int().min(1).default(3),
        fence_command: command.nullable().default(null),
        /** Added to every frame counter when restoring from a backup, as zigbee2mqtt's own restore does. */
        frame_counter_increment: z.number().int().min(0).max(MAX_FRAME_COUNTER_INCREMENT).default(2500),
        /**
         * The most network frames per second the coordinator is assumed to send: a restore from a
         * copy t seconds old resumes at least rate × t above it (the old coordinator kept counting).
         */
        frame_counter_rate: z.number().min(0).max(1000).default(10),
        /**
         * Keep each standby's dongle holding the freshest coordinator state with its counter ahead
         * (written and read back after a sync), so that a failover writes nothing in the outage.
         */
        arm_standby: z.boolean().default(true),
        /** How far ahead an armed standby's counter reaches (frame_counter_rate × this); re-armed at half. */
        arm_horizon: duration.default(21_600_000),
      })
      .prefault({}),
    monitor: z
      .strictObject({
        probe_interval: duration.default(3_000),
        probe_timeout: duration.default(2_500),
        failures: z.number().int().min(1).default(3),
        clock_skew_warn: duration.default(2_000),
        staging_max_age: duration.default(900_000),
      })
      .prefault({}),
    schedule: z
      .strictObject({
        /**
         * Cron-like "minute hour day-of-month month day-of-week", e.g. "0 4 * * 1,4" (croner's
         * syntax; a sixth field in front gives seconds). Checked here: a typo would otherwise only
         * fail when the scheduler starts, after the sidecar is up, leaving it without the schedule.
         */
        switchover: z
          .string()
          .nullable()
          .default(null)
          .superRefine((pattern, ctx) => {
            if (pattern === null) return;
            try {
              new Cron(pattern, { paused: true }).stop();
            } catch (error) {
              ctx.addIssue({
                code: "custom",
                message: `bad schedule ${JSON.stringify(pattern)}: ${(error as Error).message}`,
              });
            }
          }),
      })
      .prefault({}),
    snmp: z
      .strictObject({
        targets: z.array(snmpTarget).min(1),
        /**
         * Root of ZIGBEE2MQTT-HA-MIB (its MODULE-IDENTITY); default 1.3.6.1.4.1.32473.8485. Set it
         * together with a MIB regenerated by scripts/mib-reroot.ts (see mibs/README.md).
         */
        enterprise_oid: enterpriseOid.optional(),
        /** Also (or only) send the prototype's CUSTOM-SCRIPT-MIB trap. */
        prototype_compat: z.enum(["off", "also", "only"]).default("off"),
        /** Notifications kept per target while it is slow or down; the oldest is dropped first. */
        queue_size: z.number().int().min(1).max(100_000).default(1000),
      })
      .superRefine((snmp, ctx) => {
        const seen = new Map<string, number>();
        snmp.targets.forEach((target, index) => {
          const label = target.name ?? `${target.host}:${target.port}`;
          const first = seen.get(label);
          if (first === undefined) {
            seen.set(label, index);
            return;
          }
          ctx.addIssue({
            code: "custom",
            path: ["targets", index, "name"],
            message: `"${label}" is also targets[${first}]; give each target a distinct name`,
          });
        });
      })
      .optional(),
  })
  .superRefine((config, ctx) => {
    const seen = new Map<string, number>();
    config.nodes.forEach((node, index) => {
      const first = seen.get(node.id);
      if (first !== undefined) {
        ctx.addIssue({
          code: "custom",
          path: ["nodes", index, "id"],
          message: `duplicate node id "${node.id}" (also nodes[${first}].id)`,
        });
      } else {
        seen.set(node.id, index);
      }
    });
    const first = config.nodes[0]?.coordinator;
    config.nodes.forEach((node, index) => {
      if (!first || index === 0) return;
      for (const key of ["type", "adapter"] as const) {
        if (node.coordinator[key] !== first[key])
          ctx.addIssue({
            code: "custom",
            path: ["nodes", index, "coordinator", key],
            message: `every node of a cluster needs the same coordinator ${key} (${config.nodes[0]?.id} has ${first[key]}): a network moves only between dongles of one kind`,
          });
      }
    });
    const horizon = config.failover.arm_horizon;
    if (horizon < 60_000)
      ctx.addIssue({
        code: "custom",
        path: ["failover", "arm_horizon"],
        message: "must be at least 1m (a standby would be re-armed at every sync)",
      });
  });

export type Config = z.output<typeof configSchema>;
export type NodeConfig = Config["nodes"][number];
export type SnmpConfig = NonNullable<Config["snmp"]>;
export type SnmpTargetConfig = SnmpConfig["targets"][number];
