import { mkdirSync } from "node:fs";
import { join } from "node:path";
import type { FastifyInstance } from "fastify";
import type { Logger } from "pino";
import { buildApp } from "./api/app.js";
import { Alerts } from "./cluster/alerts.js";
import { Cluster } from "./cluster/cluster.js";
import { type ClusterContext, frontendHostOf } from "./cluster/context.js";
import { ClusterMetrics } from "./cluster/metrics.js";
import { markInterrupted, OperationRunner } from "./cluster/runner.js";
import type { Config } from "./config/schema.js";
import { createLogger } from "./log.js";
import { createRegistry } from "./metrics.js";
import { SshTransport } from "./node/ssh.js";
import { Staging } from "./node/staging.js";
import { ZigbeeNode } from "./node/zigbee-node.js";
import { EventBus } from "./notify/bus.js";
import { createSnmpNotifier } from "./notify/snmp.js";
import { removeOrphanTemps } from "./store/atomic.js";
import { Journal } from "./store/journal.js";
import { SnapshotStore } from "./store/snapshots.js";
import { loadOrCreateInstanceId, loadOrCreateToken, StateStore } from "./store/state.js";
import type { OperationRecord } from "./types.js";
import { VERSION } from "./version.js";
import { excludeMatcher } from "./z2m/manifest.js";
import { BridgeWatcher } from "./z2m/watcher.js";

export interface Sidecar {
  app: FastifyInstance;
  cluster: Cluster;
  url: string;
  token: string;
  interrupted: OperationRecord[];
  close(): Promise<void>;
}

export interface SidecarOptions {
  logger?: Logger;
  /** Monitoring, failover policy and schedules; off only in tests that drive things by hand. */
  automation?: boolean;
}

const JOURNAL_COMPACT_BYTES = 4 * 1024 * 1024;
const JOURNAL_KEEP_OPERATIONS = 500;

/** Builds and starts everything from a validated config; the CLI's `serve` and tests call this. */
export async function startSidecar(config: Config, options: SidecarOptions = {}): Promise<Sidecar> {
  const logger = options.logger ?? createLogger(config.log_level);
  mkdirSync(config.state_dir, { recursive: true, mode: 0o700 });
  const orphans = removeOrphanTemps(config.state_dir);
  if (orphans.length > 0)
    logger.info(
      { files: orphans },
      `removed ${orphans.length} temp file(s) left by an earlier write cut short`,
    );

  const journal = Journal.open(join(config.state_dir, "journal.jsonl"));
  if (journal.size() > JOURNAL_COMPACT_BYTES) journal.compact(JOURNAL_KEEP_OPERATIONS);
  const replay = journal.replay();
  const bus = new EventBus(500, (error) => logger.error({ err: error }, "event listener failed"));
  const alerts = new Alerts(bus);
  for (const problem of replay.problems) {
    const message =
      problem.kind === "truncated-tail"
        ? `the operations journal ended with a torn line (${problem.bytes} bytes, line ${problem.line}), probably from a power loss; it was cut off and kept in journal.jsonl.torn`
        : `line ${problem.line} of the operations journal is not valid JSON and was skipped`;
    logger.warn({ problem }, message);
    alerts.raise("journal_truncated", "warning", message);
  }
  const interrupted = markInterrupted(journal, replay.operations);
  for (const op of interrupted) {
    logger.warn(
      { operation: op.id, kind: op.kind, last_completed_step: op.last_completed_step ?? null },
      `operation ${op.id} (${op.kind}) was interrupted: ${op.error?.message}`,
    );
  }

  const state = new StateStore(config.state_dir, { automatic_failover: config.failover.automatic });
  const instanceId = loadOrCreateInstanceId(config.state_dir);
  const token = config.server.token
    ? config.server.token.reveal()
    : (() => {
        const path = config.server.token_file ?? join(config.state_dir, "token");
        const loaded = loadOrCreateToken(path);
        if (loaded.created) logger.info({ path }, "generated a new API token");
        return loaded.token;
      })();

  const registry = createRegistry();
  const metrics = new ClusterMetrics(
    registry,
    config.nodes.map((n) => n.id),
  );
  metrics.follow(bus);
  const runner = new OperationRunner(journal, bus, replay.operations);
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
    snapshots: new SnapshotStore(config.state_dir),
    metrics,
    exclude: excludeMatcher(config.sync.exclude),
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

  const app = await buildApp({ cluster, bus, registry, token, version: VERSION, logger });
  const address = await app.listen({ host: config.server.host, port: config.server.port });
  logger.info({ address, version: VERSION, nodes: config.nodes.map((n) => n.id) }, "sidecar listening");
  // Start-up work (probes, recovery) runs behind a listening API so its progress can be watched.
  const started = cluster.start().catch((error) => logger.error({ err: error }, "cluster start-up failed"));

  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= (async () => {
      await app.close();
      await started;
      await runner.shutdown();
      await cluster.close();
      await snmp?.stop();
      journal.close();
      logger.info("sidecar stopped");
    })();
    return closing;
  };
  return { app, cluster, url: address, token, interrupted, close };
}
