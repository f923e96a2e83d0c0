import { spawn } from "node:child_process";
import { isSshError } from "../../node/ssh.js";
import { NodeCommandError, type ZigbeeNode } from "../../node/zigbee-node.js";
import type { BridgeStatus } from "../../types.js";
import { type ClusterContext, frontendHostOf, nodeOf } from "../context.js";
import { StepFailure } from "../runner.js";

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason as Error);
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener(
      "abort",
      () => {
        clearTimeout(timer);
        reject(signal.reason as Error);
      },
      { once: true },
    );
  });
}

/** Turns a node command failure into a step failure that carries the command's output. */
export function asStepFailure(error: unknown): Error {
  if (error instanceof NodeCommandError) return new StepFailure(error.message, error.output);
  return error instanceof Error ? error : new Error(String(error));
}

/**
 * Records what a node's staging dir now holds. Published as a state change so that the node's
 * readiness is derived again at once, not at its next probe (a standby just staged by a
 * switchover showed "nothing staged yet" until then).
 */
export function recordStaged(
  cx: ClusterContext,
  node: string,
  snapshotId: string,
  operationId: string,
): void {
  cx.state.update((s) => {
    s.staging = {
      ...(s.staging ?? {}),
      [node]: { snapshot_id: snapshotId, at: new Date().toISOString(), operation_id: operationId },
    };
  });
}

/** Attempts at each coordinator tool run (see withRetries). */
const TOOL_ATTEMPTS = 3;
/** Besides the tool itself: SFTP of its input or output, and the pauses between attempts. */
const TOOL_OVERHEAD_MS = 30_000;

/**
 * The timeout of a step that runs `calls` coordinator tools on `node`, one after another, each
 * with its retries: the step must outlast the tools' own timeouts (coordinator.tool_timeout, which
 * a user may raise), or it would give up on a tool the node still runs.
 */
export function toolStepTimeout(cx: ClusterContext, node: string, calls = 1): number {
  const toolTimeout = nodeOf(cx, node).config.coordinator.tool_timeout;
  return calls * TOOL_ATTEMPTS * (toolTimeout + TOOL_OVERHEAD_MS);
}

/**
 * A coordinator tool (zigpy-znp through the node, or parking) run on node `id` with the tools'
 * retries; its attempts are logged and noted as "`what` on `id`".
 */
export function withTool<T>(
  cx: ClusterContext,
  id: string,
  what: string,
  signal: AbortSignal,
  run: (node: ZigbeeNode, signal: AbortSignal) => Promise<T>,
  notes?: string[],
): Promise<T> {
  // Reading and parking leave NVRAM as it is; anything else may change what the dongle holds.
  if (!READS_ONLY.has(what)) forgetArmed(cx, id);
  return withRetries(cx, `${what} on ${id}`, TOOL_ATTEMPTS, signal, () => run(nodeOf(cx, id), signal), notes);
}

/** Tool runs after which a dongle holds what it held before. */
const READS_ONLY = new Set(["nvram_read", "park the coordinator", "coordinator info"]);

/** The dongle of `node` is about to be written, or ran the network: what it was armed with is gone. */
export function forgetArmed(cx: ClusterContext, node: string): void {
  if (!cx.state.get().armed?.[node]) return;
  cx.state.update((s) => {
    if (s.armed) delete s.armed[node];
  });
}

/** nvram_read on a node, retried as every coordinator tool is. */
export function readNvram(
  cx: ClusterContext,
  id: string,
  signal: AbortSignal,
  notes?: string[],
): Promise<string> {
  return withTool(cx, id, "nvram_read", signal, (node, s) => node.nvramRead(s), notes);
}

/**
 * Retries what is known to fail transiently: zigpy-znp's tools right after zigbee2mqtt let go of
 * the serial port (the prototype retried every one of them). Bounded; every failed attempt is
 * logged with its output, and the last error is what the step reports. A node that cannot be
 * reached at all (or refuses our key) is not retried: the SSH transport already made its
 * connection attempts, and another round only keeps the cluster waiting.
 */
async function withRetries<T>(
  cx: ClusterContext,
  what: string,
  attempts: number,
  signal: AbortSignal,
  fn: () => Promise<T>,
  notes?: string[],
): Promise<T> {
  let last: unknown;
  for (let attempt = 1; attempt <= attempts; attempt++) {
    try {
      return await fn();
    } catch (error) {
      last = error;
      if (attempt === attempts || signal.aborted) break;
      if (isSshError(error) && error.kind !== "closed" && error.kind !== "timeout") break;
      const output = error instanceof NodeCommandError ? error.output.split("\n").slice(-2).join(" | ") : "";
      cx.logger.warn({ what, attempt, err: (error as Error).message, output }, `${what} failed, retrying`);
      notes?.push(`${what}: attempt ${attempt} failed (${(error as Error).message}), retried`);
      await sleep(1500 * attempt, signal);
    }
  }
  throw asStepFailure(last);
}

/** Waits until the bridge's status satisfies `ok`, re-checking on every change; rejects on timeout. */
export function waitForBridge(
  cx: ClusterContext,
  ok: (status: BridgeStatus) => boolean,
  timeoutMs: number,
  signal: AbortSignal,
  describe: () => string,
): Promise<BridgeStatus> {
  return new Promise((resolve, reject) => {
    const check = () => {
      const status = cx.watcher.status();
      if (ok(status)) {
        cleanup();
        resolve(status);
      }
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new StepFailure(`timed out after ${Math.round(timeoutMs / 1000)}s: ${describe()}`));
    }, timeoutMs);
    const poll = setInterval(check, 500);
    const onAbort = () => {
      cleanup();
      reject(signal.reason as Error);
    };
    const cleanup = () => {
      clearTimeout(timer);
      clearInterval(poll);
      cx.watcher.off("change", check);
      signal.removeEventListener("abort", onAbort);
    };
    cx.watcher.on("change", check);
    signal.addEventListener("abort", onAbort, { once: true });
    check();
  });
}

/** Stops zigbee2mqtt on a node and confirms it with the service status. */
export async function stopAndConfirm(cx: ClusterContext, id: string, signal?: AbortSignal): Promise<string> {
  const node = nodeOf(cx, id);
  const before = await node.serviceState(signal);
  if (before === "stopped") return "was not running";
  // A crashed service runs nothing, but stopping it resets the service manager's state.
  await node.stopService(signal);
  // OpenRC on Alpine sometimes reports an error on the first stop ("ghost error"): ask again.
  const after = await node.serviceState(signal);
  if (after === "crashed")
    throw new StepFailure(`the service manager on ${id} still reports zigbee2mqtt as crashed`);
  if (after !== "stopped") {
    await node.stopService(signal);
    if ((await node.serviceState(signal)) !== "stopped")
      throw new StepFailure(`zigbee2mqtt on ${id} is still running after stop`);
  }
  return before === "crashed" ? "had crashed; service state reset" : "stopped (service status confirms)";
}

/**
 * How long a started zigbee2mqtt gets to reach bridge online. Generous: a restore onto a blank
 * dongle or a slow host can take well over a minute, and giving up early turns a slow start into
 * a rollback.
 */
export const ONLINE_TIMEOUT_MS = 180_000;

export interface ExpectedNetwork {
  ieee?: string;
  pan_id?: number;
  extended_pan_id?: string;
  channel?: number;
}

/**
 * Waits until bridge/state is online, published by `id` (its frontend host in bridge/info), with
 * the expected coordinator IEEE and network. A fresh bridge/info must arrive after `since`.
 */
export async function waitOnline(
  cx: ClusterContext,
  id: string,
  expected: ExpectedNetwork,
  timeoutMs: number,
  signal: AbortSignal,
): Promise<string> {
  const host = frontendHostOf(nodeOf(cx, id).config);
  const mismatch = (s: BridgeStatus): string | undefined => {
    if (!s.broker_connected) return "controller is not connected to the MQTT broker";
    if (s.state !== "online") return `bridge/state is ${s.state}`;
    if (s.frontend_host !== host)
      return `bridge/info names ${s.frontend_host ?? "no frontend host"}, expected ${host}`;
    if (expected.ieee && s.coordinator_ieee !== expected.ieee) {
      return `coordinator IEEE is ${s.coordinator_ieee}, expected ${expected.ieee}`;
    }
    const net = s.network;
    if (expected.pan_id !== undefined && net?.pan_id !== expected.pan_id)
      return `PAN ID is ${net?.pan_id}, expected ${expected.pan_id}`;
    if (expected.extended_pan_id && net?.extended_pan_id !== expected.extended_pan_id) {
      return `extended PAN ID is ${net?.extended_pan_id}, expected ${expected.extended_pan_id}`;
    }
    if (expected.channel !== undefined && net?.channel !== expected.channel)
      return `channel is ${net?.channel}, expected ${expected.channel}`;
    return undefined;
  };
  const watching = new AbortController();
  const stop = () => watching.abort();
  signal.addEventListener("abort", stop, { once: true });
  try {
    const status = await Promise.race([
      waitForBridge(
        cx,
        (s) => mismatch(s) === undefined,
        timeoutMs,
        signal,
        () => mismatch(cx.watcher.status()) ?? "",
      ),
      watchForExit(cx, id, watching.signal),
    ]);
    return `online on ${id}: coordinator ${status.coordinator_ieee}, PAN ${status.network?.pan_id}, channel ${status.network?.channel}`;
  } finally {
    watching.abort();
    signal.removeEventListener("abort", stop);
  }
}

const EXIT_POLL_MS = 2_000;

/**
 * Rejects as soon as the node's service stops running (twice in a row, a moment apart), with the
 * end of zigbee2mqtt's log: a zigbee2mqtt that refuses to start (configuration-adapter mismatch,
 * no dongle) fails the wait at once instead of at its timeout. Never resolves.
 */
async function watchForExit(cx: ClusterContext, id: string, signal: AbortSignal): Promise<never> {
  const node = nodeOf(cx, id);
  let gone = 0;
  while (!signal.aborted) {
    await sleep(EXIT_POLL_MS, signal).catch(() => undefined);
    if (signal.aborted) break;
    const state = await node.serviceState().catch(() => "unknown");
    gone = state === "stopped" || state === "crashed" ? gone + 1 : 0;
    if (gone >= 2) {
      const log = await zigbee2mqttLogTail(cx, id);
      throw new StepFailure(`zigbee2mqtt on ${id} exited while starting (service ${state})`, log);
    }
  }
  return new Promise<never>(() => {});
}

/** The end of zigbee2mqtt's newest log file in the node's data dir (its default log location). */
export async function zigbee2mqttLogTail(cx: ClusterContext, id: string, lines = 30): Promise<string> {
  const node = nodeOf(cx, id);
  const result = await node
    .run(
      [
        "sh",
        "-c",
        'd=$(ls -1dt -- "$1"/log/*/ 2>/dev/null | head -n 1); [ -n "$d" ] && tail -n "$2" -- "$d"log.log',
        "z2mha-log",
        node.config.data_dir,
        String(lines),
      ],
      { timeoutMs: 10_000 },
    )
    .catch(() => undefined);
  return result?.stdout.trim() ?? "";
}

/** Runs the configured fence command on the controller (no shell), with the node id as $Z2MHA_NODE. */
export function runFenceCommand(
  argv: string[],
  node: string,
  timeoutMs: number,
): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(argv[0] as string, argv.slice(1), {
      env: { ...process.env, Z2MHA_NODE: node },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    const add = (d: Buffer) => {
      output = (output + d.toString()).slice(-4000);
    };
    child.stdout.on("data", add);
    child.stderr.on("data", add);
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("error", (error) => {
      clearTimeout(timer);
      resolve({ code: null, output: error.message });
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}
