/**
 * One simulated EmberZNet dongle as a running service: the NCP, its flash (state file), the ways a
 * host reaches it (TCP, unix socket, pty) and the lab's control socket.
 */
import { randomBytes } from "node:crypto";
import { SlStatus } from "../../../sidecar/coordinator/ember/constants.js";
import { type ControlReply, ControlServer } from "../simulator/control.js";
import type { HostPortSpec } from "../simulator/host-port.js";
import {
  describeLink,
  type LinkProfile,
  type LinkSettings,
  LinkStats,
  resolveLink,
} from "../simulator/link.js";
import { DebouncedWriter, writeFileAtomic } from "../simulator/state-file.js";
import { DEFAULT_EZSP_VERSION } from "./constants.js";
import { HostPort, type LinkSource } from "./host-port.js";
import { EmberNcp, type Logger } from "./ncp.js";
import { PtySupervisor } from "./pty.js";
import { blankTokens, loadState, serializeState, type Tokens } from "./state-file.js";

export interface ServiceOptions {
  statePath: string;
  /** Factory EUI64 for a new state file (MSB first); random with a Silicon Labs OUI if absent. */
  eui64?: string;
  /** New state file only: MFG_CUSTOM_EUI_64 already programmed (a dongle someone restored onto before). */
  customEui64?: string;
  listen: HostPortSpec[];
  pty?: { path: string; group?: string };
  controlPath?: string;
  framesPerSecond: number;
  resetDelayMs?: number;
  stepDelayMs?: number;
  ezspVersion?: number;
  link?: LinkSettings;
  log: Logger;
  trace?: (line: string) => void;
}

const PERSIST_DELAY_MS = 50;

export function normalizeEui64(value: string): string {
  const hex = value.toLowerCase().replace(/^0x/, "").replace(/[:-]/g, "");
  if (!/^[0-9a-f]{16}$/.test(hex))
    throw new Error(`EUI64 must be 16 hex digits, got ${JSON.stringify(value)}`);
  if (hex === "ffffffffffffffff")
    throw new Error("EUI64 ffffffffffffffff is the blank token, not an address");
  return hex;
}

export class EmberSimulatorService {
  readonly device: EmberNcp;
  private readonly hostPorts: HostPort[];
  private readonly pty: PtySupervisor | undefined;
  private readonly control: ControlServer | undefined;
  private readonly writer: DebouncedWriter;
  private unplugged = false;
  private busy: Promise<unknown> = Promise.resolve();
  private linkProfile: LinkProfile | undefined;
  private readonly linkStats = new LinkStats();

  constructor(private readonly options: ServiceOptions) {
    const log = options.log;
    const existing = loadState(options.statePath);
    let tokens: Tokens;
    let factoryEui64: string;
    let maxFc: number;
    if (existing) {
      ({ tokens, factoryEui64, maxNwkFrameCounter: maxFc } = existing);
      if (options.eui64 && normalizeEui64(options.eui64) !== factoryEui64)
        log.info(`--eui64 ${options.eui64} ignored: ${options.statePath} belongs to ${factoryEui64}`);
      if (options.customEui64) log.info(`--custom-eui64 ignored: ${options.statePath} already exists`);
    } else {
      tokens = blankTokens();
      if (options.customEui64) tokens.customEui64 = normalizeEui64(options.customEui64);
      // 0x8c65a3 is one of Silicon Labs' OUIs; the rest is random like a factory-programmed part.
      factoryEui64 = options.eui64
        ? normalizeEui64(options.eui64)
        : `8c65a3ff${randomBytes(4).toString("hex")}`;
      maxFc = 0;
      log.info(
        `new dongle ${factoryEui64}${tokens.customEui64 ? ` (custom EUI64 token ${tokens.customEui64})` : ""}, state in ${options.statePath}`,
      );
    }
    this.device = new EmberNcp({
      tokens,
      factoryEui64,
      maxNwkFrameCounter: maxFc,
      framesPerSecond: options.framesPerSecond,
      resetDelayMs: options.resetDelayMs,
      stepDelayMs: options.stepDelayMs,
      ezspVersion: options.ezspVersion ?? DEFAULT_EZSP_VERSION,
      log,
      trace: options.trace,
      onStateChange: () => this.writer.schedule(),
    });
    this.writer = new DebouncedWriter(() => this.persist(), PERSIST_DELAY_MS);
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
        factoryEui64: this.device.factoryEui64,
        maxNwkFrameCounter: this.device.maxNwkFrameCounter,
        tokens: this.device.tokens,
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
    await this.pty?.stop();
    for (const port of this.hostPorts) await port.stop();
  }

  get hostAddresses(): string[] {
    return this.hostPorts.map((p) => p.address);
  }

  /** Pull the stick: the host's port dies, the radio stops, the tokens stay as written. */
  async unplug(): Promise<void> {
    if (this.unplugged) return;
    this.unplugged = true;
    await this.closePorts();
    this.device.powerOff();
    this.writer.flush();
    this.options.log.info("unplugged");
  }

  /** Put it back: the chip boots (no network until a host calls networkInit), the ports reappear. */
  async replug(): Promise<void> {
    if (!this.unplugged) return;
    this.device.powerOn();
    this.writer.flush();
    await this.openPorts();
    this.unplugged = false;
    this.options.log.info("replugged");
  }

  statusReply(): ControlReply {
    return {
      ok: true,
      ...this.device.status(this.unplugged),
      unplugged: this.unplugged,
      link: describeLink(this.linkProfile),
    };
  }

  setLink(settings: LinkSettings): void {
    this.linkProfile = resolveLink(settings);
    this.options.log.info(
      `link: ${JSON.stringify(describeLink(this.linkProfile))} from the next host session`,
    );
  }

  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.busy.then(fn, fn);
    this.busy = run.catch(() => undefined);
    return run;
  }

  private async handleControl(request: Record<string, unknown>): Promise<ControlReply> {
    // The Z-Stack simulator spells its commands with hyphens; accept both.
    const cmd = typeof request.cmd === "string" ? request.cmd.replaceAll("-", "_") : request.cmd;
    switch (cmd) {
      case "status":
        return this.statusReply();
      case "stats":
        return { ok: true, ...this.device.getStats(), link: this.linkStats.toJSON() };
      case "tokens":
        return {
          ok: true,
          factory_eui64: this.device.factoryEui64,
          max_nwk_frame_counter: this.device.maxNwkFrameCounter,
          tokens: this.device.tokens,
        };
      case "unplug":
        await this.exclusive(() => this.unplug());
        return this.statusReply();
      case "replug":
        await this.exclusive(() => this.replug());
        return this.statusReply();
      case "power_cycle":
        if (this.unplugged) return { ok: false, error: "the dongle is unplugged; replug it instead" };
        await this.exclusive(async () => {
          await this.unplug();
          await this.replug();
        });
        return this.statusReply();
      case "reset":
        if (this.unplugged) return { ok: false, error: "the dongle is unplugged" };
        this.device.reboot("control socket");
        return this.statusReply();
      case "leave":
        if (this.unplugged) return { ok: false, error: "the dongle is unplugged" };
        this.device.leave();
        this.writer.flush();
        return this.statusReply();
      case "write_custom_eui64": {
        if (typeof request.eui64 !== "string") return { ok: false, error: "write_custom_eui64 needs eui64" };
        const result = this.device.writeCustomEui64(normalizeEui64(request.eui64));
        if (result === SlStatus.FLASH_WRITE_INHIBITED)
          return {
            ok: false,
            error: `the custom EUI64 token is already written (${this.device.tokens.customEui64})`,
          };
        this.writer.flush();
        return this.statusReply();
      }
      case "reset_max_frame_counter":
        this.device.resetMaxFrameCounter();
        return this.statusReply();
      case "set_traffic": {
        const fps = request.frames_per_second;
        if (typeof fps !== "number" || !Number.isFinite(fps) || fps < 0 || fps > 100000)
          return { ok: false, error: "set_traffic needs frames_per_second: a number from 0 to 100000" };
        this.device.setFramesPerSecond(fps);
        return this.statusReply();
      }
      case "set_link":
        this.setLink(linkSettingsFromRequest(request));
        return this.statusReply();
      default:
        return {
          ok: false,
          error: `unknown cmd ${JSON.stringify(request.cmd)}; known: status, stats, tokens, unplug, replug, power_cycle, reset, leave, write_custom_eui64, reset_max_frame_counter, set_traffic, set_link`,
        };
    }
  }

  async shutdown(): Promise<void> {
    await this.control?.stop();
    await this.closePorts();
    await this.pty?.dispose();
    this.device.powerOff();
    this.writer.flush();
  }
}

function linkSettingsFromRequest(request: Record<string, unknown>): LinkSettings {
  const known = new Set(["cmd", "mode", "baud", "latency_ms", "nv_write_ms", "nv_delete_ms"]);
  const unknown = Object.keys(request).filter((k) => !known.has(k));
  if (unknown.length > 0) throw new Error(`set_link: unknown field(s) ${unknown.join(", ")}`);
  const number = (key: string): number | undefined => {
    const value = request[key];
    if (value === undefined) return undefined;
    if (typeof value !== "number") throw new Error(`set_link: ${key} must be a number`);
    return value;
  };
  const mode = request.mode;
  if (mode !== "instant" && mode !== "realistic")
    throw new Error('set_link needs mode: "instant" or "realistic"');
  return {
    mode,
    baud: number("baud"),
    latencyMs: number("latency_ms"),
    nvWriteMs: number("nv_write_ms"),
    nvDeleteMs: number("nv_delete_ms"),
  };
}
