/**
 * Start an ember simulator as its own process (as the lab and the integration tests run it) and
 * wait until it is ready: the same shape as the Z-Stack simulator's SimulatorProcess.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createWriteStream } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { LinkMode } from "../simulator/link.js";
import { EmberSimulatorClient, type EmberStatus } from "./client.js";

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = resolve(here, "../../..");

export interface EmberSimulatorProcessOptions {
  /** Directory for the state file, control socket, log and (by default) the pty link. */
  dir: string;
  /** Prefix for the files in `dir`, so several simulators can share one directory. */
  name?: string;
  /** Factory EUI64 of a new dongle, MSB first. */
  eui64?: string;
  /** New dongle only: MFG_CUSTOM_EUI_64 already programmed. */
  customEui64?: string;
  /** true: a pty link at `<dir>/<name>.tty`; a string: that path; false/absent: none. */
  pty?: boolean | string;
  ptyGroup?: string;
  /** Serve TCP on 127.0.0.1 with a free port (default true). */
  tcp?: boolean;
  framesPerSecond?: number;
  link?: LinkMode;
  ezspVersion?: number;
  resetDelayMs?: number;
  statePath?: string;
  extraArgs?: string[];
  readyTimeoutMs?: number;
}

interface ReadyLine extends EmberStatus {
  event: "ready";
  pid: number;
  listen: string[];
  pty: string | null;
  control: string | null;
}

export class EmberSimulatorProcess {
  private exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  private constructor(
    readonly child: ChildProcess,
    readonly client: EmberSimulatorClient,
    readonly statePath: string,
    readonly logPath: string,
    readonly ptyPath: string | undefined,
    readonly tcpUrl: string | undefined,
    readonly ready: ReadyLine,
  ) {
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

  static async start(options: EmberSimulatorProcessOptions): Promise<EmberSimulatorProcess> {
    const name = options.name ?? "ember";
    const statePath = options.statePath ?? join(options.dir, `${name}.state.json`);
    const controlPath = join(options.dir, `${name}.control.sock`);
    const logPath = join(options.dir, `${name}.log`);
    const ptyPath = options.pty === true ? join(options.dir, `${name}.tty`) : options.pty || undefined;
    const args = [
      "--import",
      "tsx",
      join(here, "main.ts"),
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
    if (options.eui64) args.push("--eui64", options.eui64);
    if (options.customEui64) args.push("--custom-eui64", options.customEui64);
    if (options.ezspVersion !== undefined) args.push("--ezsp-version", String(options.ezspVersion));
    if (options.resetDelayMs !== undefined) args.push("--reset-delay-ms", String(options.resetDelayMs));
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
    const ready = await new Promise<ReadyLine>((resolvePromise, reject) => {
      let out = "";
      const timer = setTimeout(() => {
        child.kill("SIGKILL");
        reject(new Error(`ember simulator not ready within ${timeoutMs} ms (see ${logPath})`));
      }, timeoutMs);
      child.stdout?.on("data", (chunk: Buffer) => {
        out += chunk.toString();
        const nl = out.indexOf("\n");
        if (nl < 0) return;
        clearTimeout(timer);
        try {
          resolvePromise(JSON.parse(out.slice(0, nl)) as ReadyLine);
        } catch {
          reject(
            new Error(
              `ember simulator printed ${JSON.stringify(out.slice(0, nl))} instead of its ready line`,
            ),
          );
        }
      });
      child.once("exit", (code, signal) => {
        clearTimeout(timer);
        reject(
          new Error(`ember simulator exited (${code ?? signal}) before it was ready; see ${logPath}.stderr`),
        );
      });
    });
    const tcpUrl = ready.listen.find((a) => a.startsWith("tcp://"));
    return new EmberSimulatorProcess(
      child,
      new EmberSimulatorClient(controlPath),
      statePath,
      logPath,
      ptyPath,
      tcpUrl,
      ready,
    );
  }

  status(): Promise<EmberStatus> {
    return this.client.status();
  }

  /**
   * Wait until no host holds the port. After a host program exits, the simulator learns about it a
   * moment later (on the pty: socat reads EIO and drops its connection). Unlike the Z-Stack chip,
   * an EmberZNet NCP keeps its network (and its frame counter) running after that: read
   * `network_up` too.
   */
  async waitForNoHost(timeoutMs = 5000): Promise<EmberStatus> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const status = await this.client.status();
      if (!status.host_connected) return status;
      if (Date.now() > deadline) throw new Error(`a host is still connected after ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** SIGTERM and wait: the simulator flushes its tokens and removes its pty link and sockets. */
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
