import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, posix } from "node:path";
import { fileURLToPath } from "node:url";
import type { Logger } from "pino";
import type { NodeConfig } from "../config/schema.js";
import { nodeVersionProblem } from "./node-version.js";
import { type ExecOptions, type ExecResult, isNotFound, type SshTransport } from "./ssh.js";

const ZNP_TOOLS = "zigpy-znp tools";
const EMBER_TOOLS = "Node.js for the ember tool";

/** The outcome of toolsPresent: `what` names the tools for messages ("zigpy-znp tools"). */
export interface ToolsCheck {
  ok: boolean;
  what: string;
  detail: string;
}

/** "crashed": the service manager thinks it started it but the process is gone (OpenRC exit 32). */
export type ServiceState = "running" | "stopped" | "crashed";

export class NodeCommandError extends Error {
  constructor(
    readonly node: string,
    readonly what: string,
    readonly result: ExecResult | undefined,
    message?: string,
  ) {
    super(message ?? `${node}: ${what} failed${result ? ` (${describeExit(result)})` : ""}`);
    this.name = "NodeCommandError";
  }

  /** The end of the command's output, for the operation record. */
  get output(): string {
    if (!this.result) return "";
    return [this.result.stdout.trim(), this.result.stderr.trim()].filter(Boolean).join("\n").slice(-4000);
  }
}

export function describeExit(result: ExecResult): string {
  if (result.timedOut) return `timed out after ${Math.round(result.durationMs)} ms`;
  if (result.signal) return `killed by ${result.signal}`;
  return `exit ${result.code}`;
}

/**
 * The bundled host tool: next to the bundled sidecar (dist/cli.js → dist/ember-tool.js), or the
 * repository's build when the sidecar runs from source.
 */
export function emberToolPath(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  for (const candidate of [join(here, "ember-tool.js"), join(here, "..", "..", "dist", "ember-tool.js")])
    if (existsSync(candidate)) return candidate;
  throw new Error("dist/ember-tool.js is missing: build the sidecar (npm run build)");
}

/** NV items whose value changes nothing in how the network runs (descriptors, tuning). */
const PARK_ITEMS = ["USERDESC", "SAPI_ENDPOINT", "NWKMGR_MIN_TX", "SCAN_DURATION"];

export type CoordinatorTool =
  | "nvram_read"
  | "nvram_write"
  | "nvram_reset"
  | "network_backup"
  | "network_restore";

/**
 * One zigbee2mqtt node, as the sidecar sees it through SSH: its service, its coordinator tools,
 * its files. Commands come from the config as argument vectors; nothing here builds a shell line.
 */
export class ZigbeeNode {
  readonly id: string;

  constructor(
    readonly config: NodeConfig,
    readonly ssh: SshTransport,
    private readonly logger: Logger,
  ) {
    this.id = config.id;
  }

  async run(argv: readonly string[], options: ExecOptions = {}): Promise<ExecResult> {
    return this.ssh.exec(argv, options);
  }

  /** Runs and insists on exit 0. */
  async must(what: string, argv: readonly string[], options: ExecOptions = {}): Promise<ExecResult> {
    const result = await this.run(argv, options);
    if (result.code !== 0) throw new NodeCommandError(this.id, what, result);
    return result;
  }

  // ---- the zigbee2mqtt service ------------------------------------------------------------

  /**
   * Whether zigbee2mqtt runs, by the configured status command: exit 0 means running, 3 (OpenRC
   * and LSB "stopped", systemd "inactive") and 32 (OpenRC "crashed") mean not running. Anything
   * else (sudo refusing, command missing) is an error: we do not know.
   */
  async serviceState(signal?: AbortSignal): Promise<ServiceState> {
    const result = await this.run(this.config.service.status, {
      timeoutMs: this.config.service.timeout,
      ...(signal ? { signal } : {}),
    });
    if (result.code === 0) return "running";
    if (result.code === 3) return "stopped";
    if (result.code === 32) return "crashed";
    throw new NodeCommandError(this.id, "service status", result);
  }

  /**
   * Starts zigbee2mqtt. A crashed service is stopped first: OpenRC answers "already started" to a
   * start while it still remembers the crashed daemon, and would start nothing.
   */
  async startService(signal?: AbortSignal): Promise<void> {
    if ((await this.serviceState(signal)) === "crashed") await this.stopService(signal);
    await this.must("start zigbee2mqtt", this.config.service.start, {
      timeoutMs: this.config.service.timeout,
      ...(signal ? { signal } : {}),
    });
  }

  async stopService(signal?: AbortSignal): Promise<void> {
    await this.must("stop zigbee2mqtt", this.config.service.stop, {
      timeoutMs: this.config.service.timeout,
      ...(signal ? { signal } : {}),
    });
  }

  // ---- the coordinator ---------------------------------------------------------------------

  toolArgv(tool: CoordinatorTool | string, args: string[]): string[] {
    const prefix = [...this.config.coordinator.tools];
    const module = prefix.pop() as string;
    return [...prefix, `${module}.${tool}`, ...args];
  }

  async runTool(tool: CoordinatorTool, args: string[], signal?: AbortSignal): Promise<ExecResult> {
    return this.run(this.toolArgv(tool, args), {
      timeoutMs: this.config.coordinator.tool_timeout,
      ...(signal ? { signal } : {}),
    });
  }

  /**
   * Whether the coordinator tools this node's adapter needs run: zigpy-znp's for a Z-Stack dongle,
   * the Node.js that runs the sidecar's ember tool (it is uploaded when used) for an EmberZNet one.
   */
  async toolsPresent(): Promise<ToolsCheck> {
    if (this.config.coordinator.adapter === "ember") {
      const argv = [...this.config.coordinator.tools, "--version"];
      const result = await this.run(argv, { timeoutMs: 30_000 });
      const version = result.stdout.trim();
      const problem =
        result.code === 0 ? nodeVersionProblem(version) : `${describeExit(result)} ${tail(result)}`;
      if (problem === undefined)
        return { ok: true, what: EMBER_TOOLS, detail: `${argv[0]} ${version} runs the ember tool` };
      return { ok: false, what: EMBER_TOOLS, detail: `${argv.join(" ")}: ${problem}` };
    }
    const argv = this.toolArgv("nvram_read", ["--help"]);
    const result = await this.run(argv, { timeoutMs: 30_000 });
    if (result.code === 0) return { ok: true, what: ZNP_TOOLS, detail: "zigpy-znp tools run" };
    return {
      ok: false,
      what: ZNP_TOOLS,
      detail: `${argv.join(" ")}: ${describeExit(result)} ${tail(result)}`,
    };
  }

  /** host and port of a network-attached coordinator (`tcp://host:port`), else undefined. */
  get networkPort(): { host: string; port: number } | undefined {
    const m = /^tcp:\/\/([^\s/:]+):(\d+)$/.exec(this.config.coordinator.port);
    return m ? { host: m[1] as string, port: Number(m[2]) } : undefined;
  }

  /**
   * Whether the serial device exists. Undefined for a network-attached coordinator: it accepts
   * one client at a time, so the sidecar never connects to it in passing (probes) and cannot
   * tell; portReachable tells, when the node's zigbee2mqtt is stopped.
   */
  async portPresent(): Promise<boolean | undefined> {
    if (this.networkPort) return undefined;
    try {
      const stats = await this.ssh.stat(this.config.coordinator.port);
      return stats.type === "other";
    } catch (error) {
      if (isNotFound(error)) return false;
      throw error;
    }
  }

  /**
   * The coordinator answers: the serial device exists, or the network-attached one accepts a TCP
   * connection from the node (closed at once). Only while this node's zigbee2mqtt is stopped:
   * it would otherwise hold the coordinator's one client connection.
   */
  async portReachable(signal?: AbortSignal): Promise<boolean> {
    const network = this.networkPort;
    if (!network) return (await this.portPresent()) === true;
    const probe =
      'const [h, p] = process.argv.slice(1); const s = require("node:net").connect(Number(p), h);' +
      's.setTimeout(3000, () => process.exit(1)); s.on("connect", () => { s.destroy(); process.exit(0); });' +
      's.on("error", () => process.exit(1));';
    const result = await this.run(["node", "-e", probe, network.host, String(network.port)], {
      timeoutMs: 10_000,
      ...(signal ? { signal } : {}),
    });
    return result.code === 0;
  }

  #scratch(name: string): string {
    return posix.join(this.config.staging_dir, `.z2mha-${name}`);
  }

  /**
   * Reads the dongle's NVRAM with zigpy-znp's nvram_read into a scratch file next to the staging
   * dir and returns its text. The tool creates its output before connecting, so only a zero exit
   * counts; the content is validated by the caller.
   */
  async nvramRead(signal?: AbortSignal): Promise<string> {
    const file = this.#scratch("nvram-read.json");
    await this.ssh.mkdirp(this.config.staging_dir);
    await this.#removeQuietly(file);
    const result = await this.runTool("nvram_read", [this.config.coordinator.port, "-o", file], signal);
    if (result.code !== 0) throw new NodeCommandError(this.id, "nvram_read", result);
    const text = (await this.ssh.readFile(file, { maxBytes: 8 * 1024 * 1024 })).toString("utf8");
    await this.#removeQuietly(file);
    return text;
  }

  async nvramWrite(text: string, signal?: AbortSignal): Promise<void> {
    const file = this.#scratch("nvram-write.json");
    await this.ssh.mkdirp(this.config.staging_dir);
    await this.ssh.writeFileAtomic(file, text, { mode: 0o600 });
    try {
      const result = await this.runTool("nvram_write", [this.config.coordinator.port, "-i", file], signal);
      if (result.code !== 0) throw new NodeCommandError(this.id, "nvram_write", result);
    } finally {
      await this.#removeQuietly(file);
    }
  }

  /**
   * Stops the coordinator's firmware from running the network without changing its NVRAM. Z-Stack
   * keeps the network going after zigbee2mqtt disconnects (and its frame counter climbing); after
   * a reset it holds until a host starts it. zigpy-znp has no reset tool, but nvram_write ends with
   * a soft reset: writing back one inert item with the value just read is that reset.
   */
  async parkCoordinator(legacyItems: Record<string, string>, signal?: AbortSignal): Promise<string> {
    const name = PARK_ITEMS.find((item) => legacyItems[item] !== undefined);
    if (!name) throw new Error("no inert NVRAM item to write back: cannot park the coordinator");
    await this.nvramWrite(JSON.stringify({ LEGACY: { [name]: legacyItems[name] } }), signal);
    return name;
  }

  async nvramReset(signal?: AbortSignal): Promise<void> {
    const result = await this.runTool("nvram_reset", [this.config.coordinator.port], signal);
    if (result.code !== 0) throw new NodeCommandError(this.id, "nvram_reset", result);
  }

  /** zigpy-znp's network_restore from an Open Coordinator Backup, frame counters + `increment`. */
  async networkRestore(backupText: string, increment: number, signal?: AbortSignal): Promise<void> {
    const file = this.#scratch("network-restore.json");
    await this.ssh.mkdirp(this.config.staging_dir);
    await this.ssh.writeFileAtomic(file, backupText, { mode: 0o600 });
    try {
      const result = await this.runTool(
        "network_restore",
        [this.config.coordinator.port, "-i", file, "-c", String(increment)],
        signal,
      );
      if (result.code !== 0) throw new NodeCommandError(this.id, "network_restore", result);
    } finally {
      await this.#removeQuietly(file);
    }
  }

  /**
   * Runs the sidecar's own EmberZNet host tool (dist/ember-tool.js, docs/ember-tool.md) on the
   * node with its Node.js (`coordinator.tools`), uploaded into the staging dir first when the
   * node's copy is missing or differs. Returns its one line of JSON.
   */
  async emberTool(command: string, args: string[], signal?: AbortSignal): Promise<Record<string, unknown>> {
    const remote = this.#scratch("ember-tool.js");
    await this.#uploadEmberTool(remote);
    const coordinator = this.config.coordinator;
    const argv = [
      ...coordinator.tools,
      remote,
      command,
      "--port",
      coordinator.port,
      "--baud",
      String(coordinator.baudrate),
      "--flow",
      coordinator.rtscts ? "hardware" : "software",
      ...args,
    ];
    const result = await this.run(argv, {
      timeoutMs: coordinator.tool_timeout,
      ...(signal ? { signal } : {}),
    });
    let answer: Record<string, unknown> | undefined;
    try {
      const last = result.stdout.trim().split("\n").at(-1) ?? "";
      answer = JSON.parse(last) as Record<string, unknown>;
    } catch {
      answer = undefined;
    }
    if (result.code !== 0 || !answer) {
      const why = typeof answer?.error === "string" ? answer.error : undefined;
      throw new NodeCommandError(
        this.id,
        `ember-tool ${command}`,
        result,
        why && `${this.id}: ember-tool ${command}: ${why}`,
      );
    }
    return answer;
  }

  #emberToolUploaded: string | undefined;

  async #uploadEmberTool(remote: string): Promise<void> {
    const local = readFileSync(emberToolPath());
    const digest = createHash("sha256").update(local).digest("hex");
    if (this.#emberToolUploaded === digest) return;
    await this.ssh.mkdirp(this.config.staging_dir);
    let current: Buffer | undefined;
    try {
      current = await this.ssh.readFile(remote, { maxBytes: 16 * 1024 * 1024 });
    } catch (error) {
      if (!isNotFound(error)) throw error;
    }
    if (!current || createHash("sha256").update(current).digest("hex") !== digest)
      await this.ssh.writeFileAtomic(remote, local, { mode: 0o644 });
    this.#emberToolUploaded = digest;
  }

  async #removeQuietly(path: string): Promise<void> {
    try {
      await this.ssh.unlink(path);
    } catch (error) {
      if (!isNotFound(error)) throw error;
    }
  }

  // ---- probes -------------------------------------------------------------------------------

  /**
   * The node's clock minus ours, in ms, measured around one `date` call (nanoseconds with GNU
   * date, whole seconds with BusyBox: the result then carries up to a second of uncertainty).
   */
  async clockOffsetMs(): Promise<{ offsetMs: number; precisionMs: number }> {
    const before = Date.now();
    const result = await this.must("date", ["date", "+%s %N"], { timeoutMs: 10_000 });
    const after = Date.now();
    const [seconds, nanos] = result.stdout.trim().split(/\s+/);
    const secs = Number(seconds);
    const fine = nanos !== undefined && /^\d{9}$/.test(nanos);
    const remote = secs * 1000 + (fine ? Number(nanos) / 1e6 : 500);
    return { offsetMs: Math.round(remote - (before + after) / 2), precisionMs: fine ? after - before : 1000 };
  }

  async close(): Promise<void> {
    await this.ssh.close();
  }

  log(): Logger {
    return this.logger;
  }
}

function tail(result: ExecResult): string {
  return (result.stderr.trim() || result.stdout.trim()).split("\n").slice(-3).join(" ").slice(0, 500);
}
