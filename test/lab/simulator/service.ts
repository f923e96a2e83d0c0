/**
 * One simulated dongle as a running service: the device, its flash (state file), the ways a host
 * reaches it (TCP, unix socket, pty) and the lab's control socket.
 */
import { randomBytes } from "node:crypto";
import { ieeeFromHex, ieeeToHex } from "./codec.js";
import { type ControlReply, ControlServer } from "./control.js";
import type { MtFrame } from "./frame.js";
import { HostPort, type HostPortSpec, type LinkSource } from "./host-port.js";
import { describeLink, type LinkProfile, type LinkSettings, LinkStats, resolveLink } from "./link.js";
import { NvStore, type ZigpyNvramDump } from "./nv.js";
import { PtySupervisor } from "./pty.js";
import { type Logger, ZnpDevice } from "./simulator.js";
import { DebouncedWriter, loadState, serializeState, writeFileAtomic } from "./state-file.js";

export interface ServiceOptions {
  statePath: string;
  /** Factory IEEE for a new state file (MSB first); random with TI's 00124b prefix if absent. */
  ieee?: string;
  /** For a new state file: NV contents as a zigpy-znp nvram_read dump (like nvram_write to a blank chip). */
  seedNvram?: ZigpyNvramDump;
  listen: HostPortSpec[];
  pty?: { path: string; group?: string };
  controlPath?: string;
  framesPerSecond: number;
  resetDelayMs?: number;
  stepDelayMs?: number;
  /** The serial line's timing; instant by default. */
  link?: LinkSettings;
  log: Logger;
  trace?: (direction: "host->dongle" | "dongle->host", frame: MtFrame) => void;
}

/** Persist NV changes this soon after they happen (bursts coalesce). */
const PERSIST_DELAY_MS = 50;

export class SimulatorService {
  readonly device: ZnpDevice;
  private readonly hostPorts: HostPort[];
  private readonly pty: PtySupervisor | undefined;
  private readonly control: ControlServer | undefined;
  private readonly writer: DebouncedWriter;
  private unplugged = false;
  private busy: Promise<unknown> = Promise.resolve();
  private readonly hardwareIeeeHex: string;
  private linkProfile: LinkProfile | undefined;
  private readonly linkStats = new LinkStats();

  constructor(private readonly options: ServiceOptions) {
    const log = options.log;
    const existing = loadState(options.statePath);
    let nv: NvStore;
    let maxFc: number;
    if (existing) {
      nv = existing.nv;
      maxFc = existing.maxNwkFrameCounter;
      this.hardwareIeeeHex = existing.hardwareIeee;
      if (options.seedNvram) log.info(`--seed-nvram ignored: ${options.statePath} already exists`);
      if (options.ieee && ieeeToHex(ieeeFromHex(options.ieee)) !== existing.hardwareIeee) {
        log.info(`--ieee ${options.ieee} ignored: ${options.statePath} belongs to ${existing.hardwareIeee}`);
      }
    } else {
      nv = new NvStore();
      if (options.seedNvram) nv.applyZigpyDump(options.seedNvram);
      maxFc = 0;
      this.hardwareIeeeHex = options.ieee
        ? ieeeToHex(ieeeFromHex(options.ieee))
        : `00124b00${randomBytes(4).toString("hex")}`;
      log.info(
        `new ${options.seedNvram ? "seeded" : "blank"} dongle ${this.hardwareIeeeHex}, state in ${options.statePath}`,
      );
    }
    this.device = new ZnpDevice({
      nv,
      hardwareIeee: ieeeFromHex(this.hardwareIeeeHex),
      maxNwkFrameCounter: maxFc,
      framesPerSecond: options.framesPerSecond,
      resetDelayMs: options.resetDelayMs,
      stepDelayMs: options.stepDelayMs,
      log,
      trace: options.trace,
      onMetaChange: () => this.writer.schedule(),
    });
    this.writer = new DebouncedWriter(() => this.persist(), PERSIST_DELAY_MS);
    nv.onChange = () => this.writer.schedule();
    this.linkProfile = resolveLink(options.link ?? { mode: "instant" });
    const link: LinkSource = { profile: () => this.linkProfile, stats: this.linkStats };
    this.hostPorts = options.listen.map((spec) => new HostPort(this.device, spec, log, undefined, link));
    this.pty = options.pty
      ? new PtySupervisor(this.device, { linkPath: options.pty.path, group: options.pty.group, link }, log)
      : undefined;
    this.control = options.controlPath
      ? new ControlServer(options.controlPath, (req) => this.handleControl(req), log)
      : undefined;
  }

  private persist(): void {
    writeFileAtomic(
      this.options.statePath,
      serializeState({
        hardwareIeee: this.hardwareIeeeHex,
        maxNwkFrameCounter: this.device.maxNwkFrameCounter,
        nv: this.device.nv,
      }),
    );
  }

  async start(): Promise<void> {
    this.device.powerOn();
    this.writer.flush();
    await this.openPorts();
    await this.control?.start();
  }

  private async openPorts(): Promise<void> {
    for (const port of this.hostPorts) await port.start();
    await this.pty?.start();
  }

  private async closePorts(): Promise<void> {
    // The pty goes first: stopping socat is what makes an open serial port fail on the host side.
    await this.pty?.stop();
    for (const port of this.hostPorts) await port.stop();
  }

  /** Pull the stick: the host's port dies, nothing answers, the pty link disappears. */
  async unplug(): Promise<void> {
    if (this.unplugged) return;
    this.unplugged = true;
    await this.closePorts();
    this.device.powerOff();
    this.writer.flush();
    this.options.log.info("unplugged");
  }

  /** Put it back: power-on reset (RAM lost, NV kept), ports reappear. */
  async replug(): Promise<void> {
    if (!this.unplugged) return;
    this.device.powerOn();
    this.writer.flush();
    await this.openPorts();
    this.unplugged = false;
    this.options.log.info("replugged");
  }

  async powerCycle(): Promise<void> {
    await this.unplug();
    await this.replug();
  }

  /** Host connection endpoints as clients reach them (tcp://host:port with the bound port, unix:path). */
  get hostAddresses(): string[] {
    return this.hostPorts.map((p) => p.address);
  }

  statusReply(): ControlReply {
    return { ok: true, ...this.device.status(this.unplugged), link: describeLink(this.linkProfile) };
  }

  /** Changes the serial line's timing for the sessions that start from now on. */
  setLink(settings: LinkSettings): void {
    this.linkProfile = resolveLink(settings);
    this.options.log.info(
      `link: ${JSON.stringify(describeLink(this.linkProfile))} from the next host session`,
    );
  }

  /** Serialize control operations so an unplug cannot interleave with a replug. */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.busy.then(fn, fn);
    this.busy = run.catch(() => undefined);
    return run;
  }

  private async handleControl(request: Record<string, unknown>): Promise<ControlReply> {
    switch (request.cmd) {
      case "status":
        return this.statusReply();
      case "nvram":
        return { ok: true, nvram: this.device.nv.toZigpyDump(this.device.pollRateOld16()) };
      case "stats":
        return { ok: true, ...this.device.getStats(), link: this.linkStats.toJSON() };
      case "set-link":
        this.setLink(linkSettingsFromRequest(request));
        return this.statusReply();
      case "unplug":
        await this.exclusive(() => this.unplug());
        return this.statusReply();
      case "replug":
        await this.exclusive(() => this.replug());
        return this.statusReply();
      case "power-cycle":
        if (this.unplugged) return { ok: false, error: "the dongle is unplugged; replug it instead" };
        await this.exclusive(() => this.powerCycle());
        return this.statusReply();
      case "reset-max-frame-counter":
        this.device.resetMaxFrameCounter();
        return this.statusReply();
      case "set-traffic": {
        const fps = request.frames_per_second;
        if (typeof fps !== "number" || !Number.isFinite(fps) || fps < 0 || fps > 100000) {
          return { ok: false, error: "set-traffic needs frames_per_second: a number from 0 to 100000" };
        }
        this.device.setFramesPerSecond(fps);
        return this.statusReply();
      }
      default:
        return {
          ok: false,
          error: `unknown cmd ${JSON.stringify(request.cmd)}; known: status, nvram, stats, unplug, replug, power-cycle, set-traffic, set-link, reset-max-frame-counter`,
        };
    }
  }

  /** Orderly exit (SIGTERM): flush NV, remove the pty link and sockets. */
  async shutdown(): Promise<void> {
    await this.control?.stop();
    await this.closePorts();
    await this.pty?.dispose();
    this.device.powerOff();
    this.writer.flush();
  }
}

/** `{"cmd":"set-link","mode":"realistic","latency_ms":11,"baud":115200,"nv_write_ms":4,"nv_delete_ms":15}` */
function linkSettingsFromRequest(request: Record<string, unknown>): LinkSettings {
  const known = new Set(["cmd", "mode", "baud", "latency_ms", "nv_write_ms", "nv_delete_ms"]);
  const unknown = Object.keys(request).filter((k) => !known.has(k));
  if (unknown.length > 0) throw new Error(`set-link: unknown field(s) ${unknown.join(", ")}`);
  const number = (key: string): number | undefined => {
    const value = request[key];
    if (value === undefined) return undefined;
    if (typeof value !== "number") throw new Error(`set-link: ${key} must be a number`);
    return value;
  };
  const mode = request.mode;
  if (mode !== "instant" && mode !== "realistic")
    throw new Error('set-link needs mode: "instant" or "realistic"');
  return {
    mode,
    baud: number("baud"),
    latencyMs: number("latency_ms"),
    nvWriteMs: number("nv_write_ms"),
    nvDeleteMs: number("nv_delete_ms"),
  };
}
