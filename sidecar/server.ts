import { mkdirSync } from "node:fs";
import { join } from "node:path";
import type { FastifyInstance } from "fastify";
import type { Logger } from "pino";
import { buildApp } from "./api/app.js";
import { Alerts } from "./cluster/alerts.js";
import { Cluster } from "./cluster/cluster.js";
import { markInterrupted, OperationRunner } from "./cluster/runner.js";
import type { Config } from "./config/schema.js";
import { createLogger } from "./log.js";
import { createRegistry } from "./metrics.js";
import { EventBus } from "./notify/bus.js";
import { Journal } from "./store/journal.js";
import { loadOrCreateInstanceId, loadOrCreateToken, StateStore } from "./store/state.js";
import type { OperationRecord } from "./types.js";
import { VERSION } from "./version.js";

export interface Sidecar {
  app: FastifyInstance;
  url: string;
  token: string;
  interrupted: OperationRecord[];
  close(): Promise<void>;
}

const JOURNAL_COMPACT_BYTES = 4 * 1024 * 1024;
const JOURNAL_KEEP_OPERATIONS = 500;

/** Builds and starts everything from a validated config; the CLI's `serve` and tests call this. */
export async function startSidecar(config: Config, options: { logger?: Logger } = {}): Promise<Sidecar> {
  const logger = options.logger ?? createLogger(config.log_level);
  mkdirSync(config.state_dir, { recursive: true, mode: 0o700 });

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

  const state = new StateStore(config.state_dir);
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
  const runner = new OperationRunner(journal, bus, replay.operations);
  const cluster = new Cluster({ config, instanceId, state, runner, bus, alerts });

  const app = await buildApp({ cluster, bus, registry, token, version: VERSION, logger });
  const address = await app.listen({ host: config.server.host, port: config.server.port });
  logger.info({ address, version: VERSION, nodes: config.nodes.map((n) => n.id) }, "sidecar listening");

  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= (async () => {
      await app.close();
      await runner.shutdown();
      await cluster.close();
      journal.close();
      logger.info("sidecar stopped");
    })();
    return closing;
  };
  return { app, url: address, token, interrupted, close };
}
