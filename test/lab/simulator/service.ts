/**
 * One simulated dongle as a running service: the device, its flash (state file), the ways a host
 * reaches it (TCP, unix socket, pty) and the lab's control socket. DongleService is that shape for
 * both simulated chips; SimulatorService fills it with the Z-Stack device.
 */
import { randomBytes } from "node:crypto";
import { ieeeFromHex, ieeeToHex } from "./codec.js";
import { type ControlReply, ControlServer } from "./control.js";
import type { MtFrame } from "./frame.js";
import { type HostDevice, HostPort, type HostPortSpec, type LinkSource } from "./host-port.js";
import {
  describeLink,
  type LineFraming,
  type LinkProfile,
  type LinkSettings,
  LinkStats,
  linkSettingsFromRequest,
  MT_FRAMING,
  resolveLink,
} from "./link.js";
import { NvStore, type ZigpyNvramDump } from "./nv.js";
import { PtySupervisor } from "./pty.js";
import { type Logger, ZnpDevice } from "./simulator.js";
import { DebouncedWriter, loadState, serializeState, writeFileAtomic } from "./state-file.js";

/** What a service runs: a chip a host port reaches, with its power and the lab's knobs. */
export interface ServedDevice extends HostDevice {
  powerOn(): void;
  powerOff(): void;
  status(unplugged: boolean): object;
  getStats(): object;
  setFramesPerSecond(fps: number): void;
  resetMaxFrameCounter(): void;
}

/** What every dongle's service takes: its state file, where hosts reach it, the control socket, its chip's pace. */
export interface DongleServiceOptions {
  statePath: string;
  listen: HostPortSpec[];
  pty?: { path: string; group?: string };
  controlPath?: string;
  /** The serial line's timing; instant by default. */
  link?: LinkSettings;
  log: Logger;
  framesPerSecond: number;
  resetDelayMs?: number;
  stepDelayMs?: number;
}

/** How the dongles' services differ, apart from their device and their own commands. */
export interface DongleKind {
  framing: LineFraming;
  ptyTempPrefix: string;
  /** Between the words of a control command; "-" is accepted too, the Z-Stack simulator's spelling. */
  commandSeparator: "-" | "_";
}

export type ControlCommand = (request: Record<string, unknown>) => ControlReply | Promise<ControlReply>;

/** Persist changes this soon after they happen (bursts coalesce). */
const PERSIST_DELAY_MS = 50;

export abstract class DongleService<D extends ServedDevice> {
  readonly device: D;
  protected readonly writer: DebouncedWriter;
  protected unplugged = false;
  private readonly hostPorts: HostPort[];
  private readonly pty: PtySupervisor | undefined;
  private readonly control: ControlServer | undefined;
  private commands: Map<string, ControlCommand> | undefined;
  private busy: Promise<unknown> = Promise.resolve();
  private linkProfile: LinkProfile | undefined;
  private readonly linkStats = new LinkStats();

  /** `makeDevice` is handed what the device calls when its flash changed: persist soon. */
  protected constructor(
    protected readonly options: DongleServiceOptions,
    private readonly kind: DongleKind,
    makeDevice: (persistSoon: () => void) => D,
  ) {
    const log = options.log;
    this.writer = new DebouncedWriter(() => this.persist(), PERSIST_DELAY_MS);
    this.device = makeDevice(() => this.writer.schedule());
    this.linkProfile = resolveLink(options.link ?? { mode: "instant" });
    const link: LinkSource = {
      profile: () => this.linkProfile,
      stats: this.linkStats,
      framing: kind.framing,
    };
    this.hostPorts = options.listen.map((spec) => new HostPort(this.device, spec, log, undefined, link));
    this.pty = options.pty
      ? new PtySupervisor(
          this.device,
          { linkPath: options.pty.path, group: options.pty.group, tempPrefix: kind.ptyTempPrefix, link },
          log,
        )
      : undefined;
    this.control = options.controlPath
      ? new ControlServer(options.controlPath, (req) => this.handleControl(req), log)
      : undefined;
  }

  /** Write the state file now. */
  protected abstract persist(): void;

  /** The commands only this dongle has, by name as it spells them. */
  protected abstract ownCommands(): [string, ControlCommand][];

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

  /** Pull the stick: the host's port dies, the chip loses power, the pty link disappears. */
  async unplug(): Promise<void> {
    if (this.unplugged) return;
    this.unplugged = true;
    await this.closePorts();
    this.device.powerOff();
    this.writer.flush();
    this.options.log.info("unplugged");
  }

  /** Put it back: the chip boots from its flash, the ports reappear. */
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
    return {
      ok: true,
      ...this.device.status(this.unplugged),
      unplugged: this.unplugged,
      link: describeLink(this.linkProfile),
    };
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

  private sharedCommands(): [string, ControlCommand][] {
    const name = (words: string) => words.replaceAll(" ", this.kind.commandSeparator);
    return [
      ["status", () => this.statusReply()],
      ["stats", () => ({ ok: true, ...this.device.getStats(), link: this.linkStats.toJSON() })],
      [
        "unplug",
        async () => {
          await this.exclusive(() => this.unplug());
          return this.statusReply();
        },
      ],
      [
        "replug",
        async () => {
          await this.exclusive(() => this.replug());
          return this.statusReply();
        },
      ],
      [
        name("power cycle"),
        async () => {
          if (this.unplugged) return { ok: false, error: "the dongle is unplugged; replug it instead" };
          await this.exclusive(() => this.powerCycle());
          return this.statusReply();
        },
      ],
      [
        name("reset max frame counter"),
        () => {
          this.device.resetMaxFrameCounter();
          return this.statusReply();
        },
      ],
      [
        name("set traffic"),
        (request) => {
          const fps = request.frames_per_second;
          if (typeof fps !== "number" || !Number.isFinite(fps) || fps < 0 || fps > 100000)
            return {
              ok: false,
              error: `${name("set traffic")} needs frames_per_second: a number from 0 to 100000`,
            };
          this.device.setFramesPerSecond(fps);
          return this.statusReply();
        },
      ],
      [
        name("set link"),
        (request) => {
          this.setLink(linkSettingsFromRequest(request, name("set link")));
          return this.statusReply();
        },
      ],
    ];
  }

  private async handleControl(request: Record<string, unknown>): Promise<ControlReply> {
    this.commands ??= new Map([...this.sharedCommands(), ...this.ownCommands()]);
    const cmd = request.cmd;
    const run =
      typeof cmd === "string"
        ? this.commands.get(cmd.replaceAll("-", this.kind.commandSeparator))
        : undefined;
    if (run) return run(request);
    return {
      ok: false,
      error: `unknown cmd ${JSON.stringify(cmd)}; known: ${[...this.commands.keys()].join(", ")}`,
    };
  }

  /** Orderly exit (SIGTERM): flush the flash, remove the pty link and sockets. */
  async shutdown(): Promise<void> {
    await this.control?.stop();
    await this.closePorts();
    await this.pty?.dispose();
    this.device.powerOff();
    this.writer.flush();
  }
}

export interface ServiceOptions extends DongleServiceOptions {
  /** Factory IEEE for a new state file (MSB first); random with TI's 00124b prefix if absent. */
  ieee?: string;
  /** For a new state file: NV contents as a zigpy-znp nvram_read dump (like nvram_write to a blank chip). */
  seedNvram?: ZigpyNvramDump;
  trace?: (direction: "host->dongle" | "dongle->host", frame: MtFrame) => void;
}

const ZNP: DongleKind = { framing: MT_FRAMING, ptyTempPrefix: "znp-sim-pty-", commandSeparator: "-" };

export class SimulatorService extends DongleService<ZnpDevice> {
  private readonly hardwareIeeeHex: string;

  constructor(options: ServiceOptions) {
    const log = options.log;
    const existing = loadState(options.statePath);
    let nv: NvStore;
    let maxFc: number;
    let hardwareIeeeHex: string;
    if (existing) {
      nv = existing.nv;
      maxFc = existing.maxNwkFrameCounter;
      hardwareIeeeHex = existing.hardwareIeee;
      if (options.seedNvram) log.info(`--seed-nvram ignored: ${options.statePath} already exists`);
      if (options.ieee && ieeeToHex(ieeeFromHex(options.ieee)) !== existing.hardwareIeee) {
        log.info(`--ieee ${options.ieee} ignored: ${options.statePath} belongs to ${existing.hardwareIeee}`);
      }
    } else {
      nv = new NvStore();
      if (options.seedNvram) nv.applyZigpyDump(options.seedNvram);
      maxFc = 0;
      hardwareIeeeHex = options.ieee
        ? ieeeToHex(ieeeFromHex(options.ieee))
        : `00124b00${randomBytes(4).toString("hex")}`;
      log.info(
        `new ${options.seedNvram ? "seeded" : "blank"} dongle ${hardwareIeeeHex}, state in ${options.statePath}`,
      );
    }
    super(
      options,
      ZNP,
      (persistSoon) =>
        new ZnpDevice({
          nv,
          hardwareIeee: ieeeFromHex(hardwareIeeeHex),
          maxNwkFrameCounter: maxFc,
          framesPerSecond: options.framesPerSecond,
          resetDelayMs: options.resetDelayMs,
          stepDelayMs: options.stepDelayMs,
          log,
          trace: options.trace,
          onMetaChange: persistSoon,
        }),
    );
    this.hardwareIeeeHex = hardwareIeeeHex;
    nv.onChange = () => this.writer.schedule();
  }

  protected override persist(): void {
    writeFileAtomic(
      this.options.statePath,
      serializeState({
        hardwareIeee: this.hardwareIeeeHex,
        maxNwkFrameCounter: this.device.maxNwkFrameCounter,
        nv: this.device.nv,
      }),
    );
  }

  protected override ownCommands(): [string, ControlCommand][] {
    return [["nvram", () => ({ ok: true, nvram: this.device.nv.toZigpyDump(this.device.pollRateOld16()) })]];
  }
}
