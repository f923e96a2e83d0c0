/**
 * Start a simulator as its own process (as the lab and the integration tests run it) and wait until
 * it is ready. The process is the CLI in main.ts; this module only spawns and supervises it.
 * SimulatorProcessBase is what both simulators share; SimulatorProcess is the Z-Stack one.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createWriteStream } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { SimulatorClient, type SimulatorStatus } from "./client.js";
import type { LinkMode } from "./link.js";

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = resolve(here, "../../..");

/** What every simulator process takes, whatever its chip. */
export interface LaunchOptions {
  /** Directory for the state file, control socket, log and (by default) the pty link. */
  dir: string;
  /** Prefix for the files in `dir`, so several simulators can share one directory. */
  name?: string;
  /** true: a pty link at `<dir>/<name>.tty`; a string: that path; false/absent: none. */
  pty?: boolean | string;
  ptyGroup?: string;
  /** Serve TCP on 127.0.0.1 with a free port (default true). */
  tcp?: boolean;
  framesPerSecond?: number;
  /** Serial line timing (default instant). */
  link?: LinkMode;
  statePath?: string;
  extraArgs?: string[];
  readyTimeoutMs?: number;
}

/** Which simulator to launch. */
export interface SimulatorKind {
  /** Its CLI. */
  main: string;
  /** The file prefix when LaunchOptions.name is absent. */
  defaultName: string;
  /** How the errors name it. */
  what: string;
}

export type ReadyLine<S> = S & {
  event: "ready";
  pid: number;
  listen: string[];
  pty: string | null;
  control: string | null;
};

export interface Launched<S> {
  child: ChildProcess;
  statePath: string;
  controlPath: string;
  logPath: string;
  ptyPath: string | undefined;
  tcpUrl: string | undefined;
  ready: ReadyLine<S>;
}

/** Spawn the simulator with `ownArgs` (its chip's options) and wait for its ready line. */
export async function launchSimulator<S>(
  kind: SimulatorKind,
  options: LaunchOptions,
  ownArgs: string[],
): Promise<Launched<S>> {
  const name = options.name ?? kind.defaultName;
  const statePath = options.statePath ?? join(options.dir, `${name}.state.json`);
  const controlPath = join(options.dir, `${name}.control.sock`);
  const logPath = join(options.dir, `${name}.log`);
  const ptyPath = options.pty === true ? join(options.dir, `${name}.tty`) : options.pty || undefined;
  const args = [
    "--import",
    "tsx",
    kind.main,
    "--state",
    statePath,
    "--control",
    controlPath,
    "--log",
    logPath,
    "--frames-per-second",
    String(options.framesPerSecond ?? 5),
  ];
  if (options.link) args.push("--link", options.link);
  args.push(...ownArgs);
  if (options.tcp ?? true) args.push("--listen-tcp", "127.0.0.1:0");
  if (ptyPath) args.push("--pty", ptyPath);
  if (options.ptyGroup) args.push("--pty-group", options.ptyGroup);
  args.push(...(options.extraArgs ?? []));

  // Own process group, so kill() also takes down the socat the simulator supervises.
  const child = spawn(process.execPath, args, {
    cwd: repoRoot,
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  child.stderr?.pipe(createWriteStream(`${logPath}.stderr`));
  const timeoutMs = options.readyTimeoutMs ?? 20000;
  const ready = await new Promise<ReadyLine<S>>((resolvePromise, reject) => {
    let out = "";
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`${kind.what} not ready within ${timeoutMs} ms (see ${logPath})`));
    }, timeoutMs);
    child.stdout?.on("data", (chunk: Buffer) => {
      out += chunk.toString();
      const nl = out.indexOf("\n");
      if (nl < 0) return;
      clearTimeout(timer);
      try {
        resolvePromise(JSON.parse(out.slice(0, nl)) as ReadyLine<S>);
      } catch {
        reject(
          new Error(`${kind.what} printed ${JSON.stringify(out.slice(0, nl))} instead of its ready line`),
        );
      }
    });
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${kind.what} exited (${code ?? signal}) before it was ready; see ${logPath}.stderr`));
    });
  });
  const tcpUrl = ready.listen.find((a) => a.startsWith("tcp://"));
  return { child, statePath, controlPath, logPath, ptyPath, tcpUrl, ready };
}

/** A started simulator process and its control client. */
export class SimulatorProcessBase<S extends { host_connected: boolean }, C extends { status(): Promise<S> }> {
  readonly child: ChildProcess;
  readonly statePath: string;
  readonly logPath: string;
  readonly ptyPath: string | undefined;
  readonly tcpUrl: string | undefined;
  readonly ready: ReadyLine<S>;
  private readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  protected constructor(
    launched: Launched<S>,
    readonly client: C,
  ) {
    const child = launched.child;
    this.child = child;
    this.statePath = launched.statePath;
    this.logPath = launched.logPath;
    this.ptyPath = launched.ptyPath;
    this.tcpUrl = launched.tcpUrl;
    this.ready = launched.ready;
    this.exited = new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null)
        resolve({ code: child.exitCode, signal: child.signalCode });
      else child.once("exit", (code, signal) => resolve({ code, signal }));
    });
  }

  /** zigbee-herdsman's form of the TCP port. */
  get herdsmanTcpPath(): string {
    if (!this.tcpUrl) throw new Error("simulator started without TCP");
    return this.tcpUrl;
  }

  status(): Promise<S> {
    return this.client.status();
  }

  /**
   * Wait until no host holds the port. After a host program exits, the simulator learns about it a
   * moment later (on the pty: socat reads EIO and drops its connection); until then the frame
   * counter of a started chip may still move.
   */
  async waitForNoHost(timeoutMs = 5000): Promise<S> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const status = await this.client.status();
      if (!status.host_connected) return status;
      if (Date.now() > deadline) throw new Error(`a host is still connected after ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** SIGTERM and wait: the simulator flushes its flash and removes its pty link and sockets. */
  async stop(timeoutMs = 10000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill("SIGTERM");
    const timer = setTimeout(() => this.child.kill("SIGKILL"), timeoutMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Like pulling the power of the whole machine: no flush, no cleanup. */
  async kill(): Promise<void> {
    if (this.child.pid !== undefined && this.child.exitCode === null && this.child.signalCode === null) {
      try {
        process.kill(-this.child.pid, "SIGKILL");
      } catch {
        this.child.kill("SIGKILL");
      }
    }
    await this.exited;
  }
}

export interface SimulatorProcessOptions extends LaunchOptions {
  ieee?: string;
  /** For a new state file: a zigpy-znp nvram_read JSON file to preload into NV. */
  seedNvram?: string;
}

const ZNP: SimulatorKind = { main: join(here, "main.ts"), defaultName: "dongle", what: "simulator" };

export class SimulatorProcess extends SimulatorProcessBase<SimulatorStatus, SimulatorClient> {
  /** zigpy-znp's URL for the TCP port. */
  get socketUrl(): string {
    return this.herdsmanTcpPath.replace(/^tcp:/, "socket:");
  }

  static async start(options: SimulatorProcessOptions): Promise<SimulatorProcess> {
    const args: string[] = [];
    if (options.ieee) args.push("--ieee", options.ieee);
    if (options.seedNvram) args.push("--seed-nvram", options.seedNvram);
    const launched = await launchSimulator<SimulatorStatus>(ZNP, options, args);
    return new SimulatorProcess(launched, new SimulatorClient(launched.controlPath));
  }
}
