import type { AddressInfo } from "node:net";
import { join } from "node:path";
import type { FastifyInstance } from "fastify";
import type { Logger } from "pino";
import { buildApp } from "./api/app.js";
import { loadTls } from "./api/tls.js";
import { announce } from "./api/zeroconf.js";
import { Alerts } from "./cluster/alerts.js";
import { Cluster } from "./cluster/cluster.js";
import { type ClusterContext, frontendHostOf } from "./cluster/context.js";
import { ClusterMetrics } from "./cluster/metrics.js";
import { ArmingPreemption } from "./cluster/operations/standby.js";
import { markInterrupted, OperationRunner } from "./cluster/runner.js";
import { ConfigError } from "./config/load.js";
import { type Config, MIN_TOKEN_LENGTH } from "./config/schema.js";
import { createLogger } from "./log.js";
import { createRegistry } from "./metrics.js";
import { SshTransport } from "./node/ssh.js";
import { Staging } from "./node/staging.js";
import { ZigbeeNode } from "./node/zigbee-node.js";
import { EventBus } from "./notify/bus.js";
import { createSnmpNotifier } from "./notify/snmp.js";
import { removeOrphanTemps } from "./store/atomic.js";
import { Journal } from "./store/journal.js";
import { lockStateDir, type StateDirLock } from "./store/lock.js";
import { SnapshotStore } from "./store/snapshots.js";
import { loadOrCreateInstanceId, loadOrCreateToken, StateStore } from "./store/state.js";
import { StorageHealth } from "./store/storage.js";
import type { OperationRecord } from "./types.js";
import { VERSION } from "./version.js";
import { excludeMatcher } from "./z2m/manifest.js";
import { BridgeWatcher } from "./z2m/watcher.js";

export interface Sidecar {
  app: FastifyInstance;
  cluster: Cluster;
  url: string;
  token: string;
  /** SHA-256 fingerprint of the API's certificate when it serves HTTPS. */
  tlsFingerprint?: string;
  interrupted: OperationRecord[];
  close(): Promise<void>;
}

export interface SidecarOptions {
  logger?: Logger;
  /** Monitoring, failover policy and schedules; off only in tests that drive things by hand. */
  automation?: boolean;
  /** The API token from the command line or $Z2MHA_TOKEN, used when the config sets none. */
  token?: string;
}

const JOURNAL_COMPACT_BYTES = 4 * 1024 * 1024;
const JOURNAL_KEEP_OPERATIONS = 500;

/** The token's source, in order: the config, the command line / $Z2MHA_TOKEN, the token file. */
function resolveToken(config: Config, options: SidecarOptions, logger: Logger): string {
  if (config.server.token) return config.server.token.reveal();
  if (options.token !== undefined) {
    if (options.token.length < MIN_TOKEN_LENGTH)
      throw new ConfigError("$Z2MHA_TOKEN / --token", [`must be at least ${MIN_TOKEN_LENGTH} characters`]);
    return options.token;
  }
  const path = config.server.token_file ?? join(config.state_dir, "token");
  const loaded = loadOrCreateToken(path);
  if (loaded.created) logger.info({ path }, "generated a new API token");
  return loaded.token;
}

/** Builds and starts everything from a validated config; the CLI's `serve` and tests call this. */
export async function startSidecar(config: Config, options: SidecarOptions = {}): Promise<Sidecar> {
  const logger = options.logger ?? createLogger(config.log_level);
  // Before anything is read or written: a second sidecar on this state dir must stop here.
  const lock = lockStateDir(config.state_dir);
  try {
    return await start(config, options, logger, lock);
  } catch (error) {
    lock.release();
    throw error;
  }
}

async function start(
  config: Config,
  options: SidecarOptions,
  logger: Logger,
  lock: StateDirLock,
): Promise<Sidecar> {
  const orphans = removeOrphanTemps(config.state_dir);
  if (orphans.length > 0)
    logger.info(
      { files: orphans },
      `removed ${orphans.length} temp file(s) left by an earlier write cut short`,
    );

  const bus = new EventBus(500, (error) => logger.error({ err: error }, "event listener failed"));
  const alerts = new Alerts(bus);
  const storage = new StorageHealth(config.state_dir, {
    minFreeBytes: config.storage.min_free,
    onChange: (problem) => {
      if (problem) {
        logger.error({ problem }, problem.message);
        alerts.raise(
          "storage_unavailable",
          "critical",
          `${problem.message}; no switchover, failover or sync starts until it takes writes again${problem.pending.length ? ` (held in memory: ${problem.pending.join(", ")})` : ""}`,
        );
      } else {
        logger.info("the state dir takes writes again: operations resume");
        alerts.clear("storage_unavailable");
      }
    },
  });

  const journal = Journal.open(join(config.state_dir, "journal.jsonl"), { storage });
  if (journal.size() > JOURNAL_COMPACT_BYTES) journal.compact(JOURNAL_KEEP_OPERATIONS);
  const replay = journal.replay();
  for (const problem of replay.problems) {
    const message =
      problem.kind === "truncated-tail"
        ? `the operations journal ended with a torn line (${problem.bytes} bytes, line ${problem.line}), probably from a power loss; it was cut off and ${problem.detail}`
        : problem.kind === "newer-version"
          ? `the operations journal was ${problem.detail}: its entries may be misread`
          : `line ${problem.line} of the operations journal is ${problem.detail ?? "not valid"} and was skipped`;
    logger.warn({ problem }, message);
    alerts.raise(
      problem.kind === "truncated-tail" ? "journal_truncated" : "state_corrupt",
      "warning",
      message,
    );
  }
  const interrupted = markInterrupted(journal, replay.operations);
  for (const op of interrupted) {
    logger.warn(
      { operation: op.id, kind: op.kind, last_completed_step: op.last_completed_step ?? null },
      `operation ${op.id} (${op.kind}) was interrupted: ${op.error?.message}`,
    );
  }

  const state = new StateStore(config.state_dir, {
    initial: { automatic_failover: config.failover.automatic },
    onChange: (next) => bus.publish({ type: "state.changed", state: next }),
    storage,
  });
  const instanceId = loadOrCreateInstanceId(config.state_dir);
  const token = resolveToken(config, options, logger);

  const registry = createRegistry();
  const metrics = new ClusterMetrics(
    registry,
    config.nodes.map((n) => n.id),
  );
  metrics.follow(bus);
  const runner = new OperationRunner(journal, bus, {
    history: replay.operations,
    storage,
    logger: logger.child({ component: "runner" }),
    compactBytes: JOURNAL_COMPACT_BYTES,
    compactKeep: JOURNAL_KEEP_OPERATIONS,
  });
  const sshLogger = logger.child({ component: "ssh" });
  const nodes = new Map(
    config.nodes.map((n) => [
      n.id,
      new ZigbeeNode(n, SshTransport.forNode(n, sshLogger), logger.child({ node: n.id })),
    ]),
  );
  const staging = new Map(
    config.nodes.map((n) => [n.id, new Staging(nodes.get(n.id)!.ssh, n.staging_dir, n.id)]),
  );
  const watcher = new BridgeWatcher({
    url: config.mqtt.url,
    ...(config.mqtt.username ? { username: config.mqtt.username } : {}),
    ...(config.mqtt.password ? { password: config.mqtt.password } : {}),
    baseTopic: config.mqtt.base_topic,
    ...(config.mqtt.client_id ? { clientId: config.mqtt.client_id } : {}),
    keepaliveMs: config.mqtt.keepalive,
    nodes: config.nodes.map((n) => ({ id: n.id, hosts: [...new Set([frontendHostOf(n), n.ssh.host])] })),
    logger: logger.child({ component: "mqtt" }),
  });
  const snapshots = new SnapshotStore(config.state_dir, {
    storage,
    onCorrupt: (id, file, reason) => {
      const message = `snapshot ${id} could not be read (${reason}); it was set aside as ${file} and is not used`;
      logger.warn({ snapshot: id, file }, message);
      alerts.raise("state_corrupt", "warning", message);
    },
  });
  const cx: ClusterContext = {
    config,
    logger,
    state,
    runner,
    bus,
    alerts,
    nodes,
    staging,
    watcher,
    snapshots,
    metrics,
    exclude: excludeMatcher(config.sync.exclude),
    arming: new ArmingPreemption(),
    // Replaced by the cluster, which owns the monitor.
    unreachable: () => false,
  };
  const cluster = new Cluster(cx, {
    instanceId,
    interrupted,
    ...(options.automation === false ? { automation: false } : {}),
  });
  const snmp = config.snmp
    ? createSnmpNotifier(config.snmp, {
        clusterName: config.cluster_name,
        bus,
        registry,
        logger: logger.child({ component: "snmp" }),
        initialState: state.get(),
      })
    : undefined;
  snmp?.start();
  storage.start();
  // A full disk found at start-up is reported (and refused) before anything else happens.
  storage.check();

  const tls = config.server.tls
    ? await loadTls(config.server.tls, config.state_dir, config.server.host)
    : undefined;
  if (tls?.generated) logger.info({ cert: tls.certPath }, "generated a self-signed certificate for the API");
  const app = await buildApp({
    cluster,
    bus,
    registry,
    token,
    version: VERSION,
    logger,
    maxEventClients: config.server.max_event_clients,
    http: {
      ...(tls ? { tls: { cert: tls.cert, key: tls.key } } : {}),
      requestTimeoutMs: config.server.request_timeout,
      idleTimeoutMs: config.server.idle_timeout,
      maxConnections: config.server.max_connections,
    },
  });
  await app.listen({ host: config.server.host, port: config.server.port });
  const address = app.server.address() as AddressInfo;
  const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
  const url = `${tls ? "https" : "http"}://${host}:${address.port}`;
  logger.info(
    {
      address: url,
      version: VERSION,
      nodes: config.nodes.map((n) => n.id),
      ...(tls ? { tls_fingerprint: tls.fingerprint } : {}),
    },
    "sidecar listening",
  );
  const zeroconf = config.server.zeroconf
    ? announce({
        host: config.server.host,
        port: address.port,
        instanceId,
        clusterName: config.cluster_name,
        tls: !!tls,
        logger: logger.child({ component: "mdns" }),
      })
    : undefined;
  // Start-up work (probes, recovery) runs behind a listening API so its progress can be watched.
  const started = cluster.start().catch((error) => logger.error({ err: error }, "cluster start-up failed"));

  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= (async () => {
      await zeroconf?.stop();
      await app.close();
      await started;
      await runner.shutdown();
      await cluster.close();
      await snmp?.stop();
      storage.stop();
      journal.close();
      lock.release();
      logger.info("sidecar stopped");
    })();
    return closing;
  };
  return {
    app,
    cluster,
    url,
    token,
    ...(tls ? { tlsFingerprint: tls.fingerprint } : {}),
    interrupted,
    close,
  };
}
