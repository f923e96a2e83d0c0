/**
 * Start a simulator as its own process (as the lab and the integration tests run it) and wait until
 * it is ready. The process is the CLI in main.ts; this module only spawns and supervises it.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createWriteStream } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { SimulatorClient, type SimulatorStatus } from "./client.js";
import type { LinkMode } from "./link.js";

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = resolve(here, "../../..");

export interface SimulatorProcessOptions {
  /** Directory for the state file, control socket, log and (by default) the pty link. */
  dir: string;
  /** Prefix for the files in `dir`, so several simulators can share one directory. */
  name?: string;
  ieee?: string;
  /** true: a pty link at `<dir>/<name>.tty`; a string: that path; false/absent: none. */
  pty?: boolean | string;
  ptyGroup?: string;
  /** Serve TCP on 127.0.0.1 with a free port (default true). */
  tcp?: boolean;
  framesPerSecond?: number;
  /** Serial line timing (default instant). */
  link?: LinkMode;
  statePath?: string;
  /** For a new state file: a zigpy-znp nvram_read JSON file to preload into NV. */
  seedNvram?: string;
  extraArgs?: string[];
  readyTimeoutMs?: number;
}

interface ReadyLine extends SimulatorStatus {
  event: "ready";
  pid: number;
  listen: string[];
  pty: string | null;
  control: string | null;
}

export class SimulatorProcess {
  private exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  private constructor(
    readonly child: ChildProcess,
    readonly client: SimulatorClient,
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

  /** zigpy-znp's URL for the TCP port. */
  get socketUrl(): string {
    if (!this.tcpUrl) throw new Error("simulator started without TCP");
    return this.tcpUrl.replace(/^tcp:/, "socket:");
  }

  /** zigbee-herdsman's form of the TCP port. */
  get herdsmanTcpPath(): string {
    if (!this.tcpUrl) throw new Error("simulator started without TCP");
    return this.tcpUrl;
  }

  static async start(options: SimulatorProcessOptions): Promise<SimulatorProcess> {
    const name = options.name ?? "dongle";
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
    if (options.ieee) args.push("--ieee", options.ieee);
    if (options.seedNvram) args.push("--seed-nvram", options.seedNvram);
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
    const stderrLog = createWriteStream(`${logPath}.stderr`);
    child.stderr?.pipe(stderrLog);
    const ready = await new Promise<ReadyLine>((resolvePromise, reject) => {
      let out = "";
      const timer = setTimeout(() => {
        child.kill("SIGKILL");
        reject(
          new Error(`simulator not ready within ${options.readyTimeoutMs ?? 20000} ms (see ${logPath})`),
        );
      }, options.readyTimeoutMs ?? 20000);
      child.stdout?.on("data", (chunk: Buffer) => {
        out += chunk.toString();
        const nl = out.indexOf("\n");
        if (nl < 0) return;
        clearTimeout(timer);
        try {
          resolvePromise(JSON.parse(out.slice(0, nl)) as ReadyLine);
        } catch {
          reject(
            new Error(`simulator printed ${JSON.stringify(out.slice(0, nl))} instead of its ready line`),
          );
        }
      });
      child.once("exit", (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`simulator exited (${code ?? signal}) before it was ready; see ${logPath}.stderr`));
      });
    });
    const tcpUrl = ready.listen.find((a) => a.startsWith("tcp://"));
    return new SimulatorProcess(
      child,
      new SimulatorClient(controlPath),
      statePath,
      logPath,
      ptyPath,
      tcpUrl,
      ready,
    );
  }

  status(): Promise<SimulatorStatus> {
    return this.client.status();
  }

  /**
   * Wait until no host holds the port. After a host program exits, the simulator learns about it a
   * moment later (on the pty: socat reads EIO and drops its connection); until then the frame
   * counter of a started chip may still move.
   */
  async waitForNoHost(timeoutMs = 5000): Promise<SimulatorStatus> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const status = await this.client.status();
      if (!status.host_connected) return status;
      if (Date.now() > deadline) throw new Error(`a host is still connected after ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** SIGTERM and wait: the simulator flushes its NV and removes its pty link and sockets. */
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
