/**
 * Presents the dongle as a serial device: socat creates a pseudo-terminal, links it at the wanted
 * path (e.g. /dev/ttyUSB0) and, once a program opens it (wait-slave), relays its bytes to an
 * internal unix socket served by a HostPort. When the program closes the port socat sees EIO and
 * exits, removing the link; the supervisor starts a fresh socat at once, so the next open finds a
 * new pty. One socat run = one host session, which is exactly "the port is open".
 */
import { type ChildProcess, spawn } from "node:child_process";
import { lstatSync, mkdtempSync, readlinkSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type HostDevice, HostPort, type LinkSource } from "./host-port.js";
import type { Logger } from "./simulator.js";

export interface PtyOptions {
  linkPath: string;
  /** Names the private directory of the internal socket, so each simulator's are told apart. */
  tempPrefix: string;
  group?: string;
  /** How often socat polls for the port being opened (its pty-interval), seconds. */
  pollIntervalSeconds?: number;
  socat?: string;
  /** The serial line's timing (instant when absent). */
  link?: LinkSource;
}

export class PtySupervisor {
  private readonly dir: string;
  private readonly internal: HostPort;
  private child: ChildProcess | undefined;
  private running = false;
  private recentFailures: number[] = [];
  private respawnTimer: NodeJS.Timeout | undefined;

  constructor(
    device: HostDevice,
    private readonly options: PtyOptions,
    private readonly log: Logger,
  ) {
    this.dir = mkdtempSync(join(tmpdir(), options.tempPrefix));
    this.internal = new HostPort(
      device,
      { kind: "unix", path: join(this.dir, "host.sock") },
      log,
      0o600,
      options.link,
    );
  }

  get linkPath(): string {
    return this.options.linkPath;
  }

  /** Resolves once the link exists, so "started" means a program can open the port right away. */
  async start(): Promise<void> {
    if (this.running) return;
    await this.internal.start();
    this.running = true;
    this.spawnSocat();
    await this.waitForLink(5000);
  }

  private async waitForLink(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      try {
        if (readlinkSync(this.options.linkPath).startsWith("/dev/pts/")) return;
      } catch {
        // not there yet
      }
      await new Promise((r) => setTimeout(r, 10));
    }
    throw new Error(`socat did not create ${this.options.linkPath} within ${timeoutMs} ms`);
  }

  /** Remove the serial device (unplug): socat is stopped, the link disappears, an open port dies. */
  async stop(): Promise<void> {
    this.running = false;
    if (this.respawnTimer) clearTimeout(this.respawnTimer);
    this.respawnTimer = undefined;
    const child = this.child;
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 2000);
      await exited;
      clearTimeout(timer);
    }
    this.child = undefined;
    this.removeDanglingLink();
    await this.internal.stop();
  }

  /** Final cleanup (process exit). */
  async dispose(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }

  private spawnSocat(): void {
    if (!this.running) return;
    this.removeDanglingLink();
    const interval = this.options.pollIntervalSeconds ?? 0.02;
    const ptyOptions = [
      "PTY",
      `link=${this.options.linkPath}`,
      "raw",
      "echo=0",
      "mode=660",
      "wait-slave",
      `pty-interval=${interval}`,
    ];
    if (this.options.group) ptyOptions.push(`group=${this.options.group}`);
    // socat's address syntax treats , : ! as separators; a path containing them would be misread.
    if (/[,:!]/.test(this.options.linkPath)) throw new Error(`--pty path must not contain , : or !`);
    const args = [ptyOptions.join(","), `UNIX-CONNECT:${(this.internal.spec as { path: string }).path}`];
    const child = spawn(this.options.socat ?? "socat", args, { stdio: ["ignore", "ignore", "pipe"] });
    this.child = child;
    const started = Date.now();
    let stderr = "";
    child.stderr?.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.on("error", (error) => this.log.info(`socat: ${error.message}`));
    child.on("exit", (code, signal) => {
      if (this.child === child) this.child = undefined;
      const quick = Date.now() - started < 200;
      if (stderr.trim() && (code !== 0 || quick))
        this.log.info(`socat exited (${code ?? signal}): ${stderr.trim()}`);
      if (!this.running) return;
      // Back off only if socat keeps dying straight away (a bad path or group), not after sessions.
      const now = Date.now();
      this.recentFailures = this.recentFailures.filter((t) => now - t < 5000);
      if (quick && code !== 0) this.recentFailures.push(now);
      const delay = this.recentFailures.length >= 3 ? 1000 : 0;
      this.respawnTimer = setTimeout(() => this.spawnSocat(), delay);
    });
  }

  /** socat removes its link when it exits normally; a SIGKILLed one leaves it dangling. */
  private removeDanglingLink(): void {
    try {
      const st = lstatSync(this.options.linkPath);
      if (!st.isSymbolicLink()) return;
      const target = readlinkSync(this.options.linkPath);
      if (target.startsWith("/dev/pts/")) rmSync(this.options.linkPath, { force: true });
    } catch {
      // no link: nothing to do
    }
  }
}
