/**
 * A simulated TI CC2652 Z-Stack 3.x.0 coordinator as its host sees it over MT: boots into HOLD
 * (device state 0), forms or resumes a network (state 9), keeps NV across resets and power cycles
 * and loses everything in RAM (registered endpoints, BDB channel masks, the running frame counter).
 *
 * The behaviour follows /work/shared/ZNP-SIMULATOR.md (verified against zigbee-herdsman 10.9.2) and
 * what zigpy-znp 1.1.1's tools send; docs/simulator.md lists what is modelled and what is not.
 */
import { ieeeToHex, PayloadError, Reader } from "./codec.js";
import { DevState, StartupOption } from "./constants.js";
import { NIB_LENGTH, NIB_OFFSET } from "./defaults.js";
import { describeFrame, encodeFrame, FrameParser, type MtFrame, MtType, Subsystem } from "./frame.js";
import { AF_COMMANDS } from "./handlers/af.js";
import { APP_CNF_COMMANDS } from "./handlers/app-cnf.js";
import { SYS_COMMANDS, VERSION } from "./handlers/sys.js";
import type { CommandTable } from "./handlers/types.js";
import { UTIL_COMMANDS } from "./handlers/util.js";
import { ZDO_COMMANDS } from "./handlers/zdo.js";
import type { NvStore } from "./nv.js";
import { NV } from "./nv-ids.js";
import {
  changeChannel,
  clearConfig,
  clearNetworkState,
  createMissingDefaults,
  describeNetwork,
  formNetwork,
  lowestChannel,
  storedFrameCounter,
  writeFrameCounter,
} from "./nv-network.js";

const TABLES: ReadonlyMap<number, CommandTable> = new Map([
  [Subsystem.SYS, SYS_COMMANDS],
  [Subsystem.AF, AF_COMMANDS],
  [Subsystem.ZDO, ZDO_COMMANDS],
  [Subsystem.UTIL, UTIL_COMMANDS],
  [Subsystem.APP_CNF, APP_CNF_COMMANDS],
]);

/** MT RPC error codes (MT_RPC.h). */
const RpcError = { SUBSYSTEM: 0x01, COMMAND_ID: 0x02, PARAMETER: 0x03, LENGTH: 0x04 } as const;

export interface Logger {
  info(message: string): void;
  debug(message: string): void;
}

/** One open connection from the host (the serial port as the host process sees it). */
export interface HostLink {
  readonly label: string;
  write(data: Buffer): void;
  close(): void;
}

export interface EndpointDescriptor {
  endpoint: number;
  profileId: number;
  deviceId: number;
  deviceVersion: number;
  inClusters: number[];
  outClusters: number[];
}

export interface DeviceOptions {
  nv: NvStore;
  /** Factory IEEE, little-endian as on the wire. */
  hardwareIeee: Buffer;
  maxNwkFrameCounter: number;
  /** NWK frames per second while started and a host is connected. */
  framesPerSecond: number;
  /** Delay from SYS.resetReq to SYS.resetInd. */
  resetDelayMs?: number;
  /** Spacing of the AREQs a formation or a start-up emits. */
  stepDelayMs?: number;
  /** How often the running frame counter advances and reaches NV (≤ 1000 ms). */
  counterTickMs?: number;
  log?: Logger;
  /** Raw frame trace (both directions). */
  trace?: (direction: "host->dongle" | "dongle->host", frame: MtFrame) => void;
  /** Called when something outside NV that must survive a restart changed (the max frame counter). */
  onMetaChange?: () => void;
}

export interface DeviceStatus {
  ieee: string;
  hardware_ieee: string;
  state: "hold" | "started";
  device_state: number;
  nwk_frame_counter: number;
  max_nwk_frame_counter: number;
  pan_id: number | null;
  extended_pan_id: string | null;
  channel: number | null;
  configured: boolean;
  unplugged: boolean;
  host_connected: boolean;
  frames_per_second: number;
}

export interface DeviceStats {
  frames_in: number;
  frames_out: number;
  commands: Record<string, number>;
  unknown_commands: string[];
  discarded_bytes: number;
}

interface RunningCounter {
  /** The network the counter belongs to (NIB EPID, little-endian) when the stack started. */
  epid: Buffer;
  value: number;
  fraction: number;
}

const noopLogger: Logger = { info: () => {}, debug: () => {} };

export class ZnpDevice {
  readonly nv: NvStore;
  readonly hardwareIeee: Buffer;
  readonly endpoints = new Map<number, EndpointDescriptor>();
  /** BDB primary/secondary channel masks (RAM; 0 = not set, fall back to CHANLIST). */
  bdbChannels = { primary: 0, secondary: 0 };
  devState: number = DevState.HOLD;

  private maxFc: number;
  private fps: number;
  private readonly resetDelayMs: number;
  private readonly stepDelayMs: number;
  private readonly tickMs: number;
  private readonly log: Logger;
  private readonly trace: DeviceOptions["trace"];
  private readonly onMetaChange: () => void;

  private host: HostLink | undefined;
  private parser = new FrameParser();
  private poweredOn = false;
  private rebooting = false;
  private bootedAt = Date.now();
  private readonly timers = new Set<NodeJS.Timeout>();
  private ticker: NodeJS.Timeout | undefined;
  private lastTick = Date.now();
  private counter: RunningCounter | undefined;
  private stats: DeviceStats = {
    frames_in: 0,
    frames_out: 0,
    commands: {},
    unknown_commands: [],
    discarded_bytes: 0,
  };

  constructor(options: DeviceOptions) {
    this.nv = options.nv;
    this.hardwareIeee = Buffer.from(options.hardwareIeee);
    this.maxFc = options.maxNwkFrameCounter;
    this.fps = options.framesPerSecond;
    this.resetDelayMs = options.resetDelayMs ?? 300;
    this.stepDelayMs = options.stepDelayMs ?? 150;
    this.tickMs = Math.min(options.counterTickMs ?? 500, 1000);
    this.log = options.log ?? noopLogger;
    this.trace = options.trace;
    this.onMetaChange = options.onMetaChange ?? (() => {});
  }

  // ------------------------------------------------------------------ power and host

  /** Power applied (first start, replug): boot from NV. */
  powerOn(): void {
    if (this.poweredOn) return;
    this.poweredOn = true;
    this.boot("power-on");
    this.lastTick = Date.now();
    this.ticker = setInterval(() => this.tick(), this.tickMs);
    this.ticker.unref();
  }

  /** Power removed (unplug, process exit): RAM is lost, the host link dies, NV stays as written. */
  powerOff(): void {
    if (!this.poweredOn) return;
    this.tick();
    this.poweredOn = false;
    this.rebooting = false;
    this.cancelTimers();
    if (this.ticker) clearInterval(this.ticker);
    this.ticker = undefined;
    this.resetRam();
    const host = this.host;
    this.host = undefined;
    host?.close();
    this.log.info("powered off");
  }

  get isPoweredOn(): boolean {
    return this.poweredOn;
  }

  get hostConnected(): boolean {
    return this.host !== undefined;
  }

  /** A host opened the port. Only one at a time, like a serial port; false means "refused". */
  attachHost(link: HostLink): boolean {
    if (!this.poweredOn || this.host !== undefined) return false;
    this.tick();
    this.host = link;
    this.parser = new FrameParser();
    this.lastTick = Date.now();
    this.log.info(`host connected (${link.label})`);
    return true;
  }

  detachHost(link: HostLink): void {
    if (this.host !== link) return;
    this.tick();
    this.stats.discarded_bytes += this.parser.discarded;
    this.host = undefined;
    this.log.info(`host disconnected (${link.label})`);
  }

  /** Bytes from the host. */
  receive(link: HostLink, chunk: Buffer): void {
    if (this.host !== link || !this.poweredOn) return;
    for (const frame of this.parser.push(chunk)) this.handleFrame(frame);
  }

  setFramesPerSecond(fps: number): void {
    this.tick();
    this.fps = fps;
  }

  // ------------------------------------------------------------------ MT dispatch

  private handleFrame(frame: MtFrame): void {
    this.trace?.("host->dongle", frame);
    this.stats.frames_in++;
    if (this.rebooting) {
      this.log.debug(`dropped while rebooting: ${describeFrame(frame)}`);
      return;
    }
    const spec = TABLES.get(frame.subsystem)?.get(frame.command);
    const name = spec
      ? `${Subsystem[frame.subsystem]}.${spec.name}`
      : describeFrame({ ...frame, data: Buffer.alloc(0) });
    this.stats.commands[name] = (this.stats.commands[name] ?? 0) + 1;
    if (frame.type === MtType.SREQ) {
      if (!spec?.sreq) {
        this.noteUnknown(frame);
        this.sendRpcError(TABLES.has(frame.subsystem) ? RpcError.COMMAND_ID : RpcError.SUBSYSTEM, frame);
        return;
      }
      let payload: Buffer;
      try {
        payload = spec.sreq(this, new Reader(frame.data));
      } catch (error) {
        if (!(error instanceof PayloadError)) throw error;
        this.log.info(`${name}: ${error.message}`);
        this.sendRpcError(RpcError.LENGTH, frame);
        return;
      }
      this.send(MtType.SRSP, frame.subsystem, frame.command, payload);
      return;
    }
    if (frame.type === MtType.AREQ) {
      if (!spec?.areq) {
        this.noteUnknown(frame);
        return;
      }
      try {
        spec.areq(this, new Reader(frame.data));
      } catch (error) {
        if (!(error instanceof PayloadError)) throw error;
        this.log.info(`${name}: ${error.message}`);
      }
      return;
    }
    this.log.debug(`ignored ${describeFrame(frame)}`);
  }

  private noteUnknown(frame: MtFrame): void {
    const what = describeFrame(frame);
    this.log.info(`unknown command ${what}`);
    if (this.stats.unknown_commands.length < 100) this.stats.unknown_commands.push(what);
  }

  private sendRpcError(code: number, frame: MtFrame): void {
    const cmd0 = (frame.type << 5) | frame.subsystem;
    this.send(MtType.SRSP, Subsystem.RPC_ERROR, 0x00, Buffer.from([code, cmd0, frame.command]));
  }

  /** Send a frame to the host, if one is connected (a real UART would send into the void). */
  send(type: MtType, subsystem: number, command: number, data: Buffer): void {
    const frame: MtFrame = { type, subsystem, command, data };
    if (!this.host) return;
    this.trace?.("dongle->host", frame);
    this.stats.frames_out++;
    this.host.write(encodeFrame(frame));
  }

  sendAreq(subsystem: number, command: number, data: Buffer): void {
    this.send(MtType.AREQ, subsystem, command, data);
  }

  /** Run `fn` later unless a reset or power loss happens first. */
  later(ms: number, fn: () => void): void {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      fn();
    }, ms);
    this.timers.add(timer);
  }

  private cancelTimers(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }

  get step(): number {
    return this.stepDelayMs;
  }

  getStats(): DeviceStats {
    return {
      ...this.stats,
      commands: { ...this.stats.commands },
      unknown_commands: [...this.stats.unknown_commands],
      discarded_bytes: this.stats.discarded_bytes + this.parser.discarded,
    };
  }

  // ------------------------------------------------------------------ reset and boot

  /** SYS.resetReq: the chip reboots (RAM lost, NV kept) and announces itself with SYS.resetInd. */
  requestReset(type: number): void {
    this.log.info(`reset requested (type ${type})`);
    this.tick();
    this.cancelTimers();
    this.rebooting = true;
    this.resetRam();
    this.later(this.resetDelayMs, () => {
      this.rebooting = false;
      this.boot("reset");
      // reason 0 and the version bytes, as a real CC2652 sends them after a soft reset
      this.sendAreq(
        Subsystem.SYS,
        0x80,
        Buffer.from([
          0x00,
          VERSION.transportRev,
          VERSION.product,
          VERSION.major,
          VERSION.minor,
          VERSION.maint,
        ]),
      );
    });
  }

  private resetRam(): void {
    this.devState = DevState.HOLD;
    this.endpoints.clear();
    this.bdbChannels = { primary: 0, secondary: 0 };
    this.counter = undefined;
  }

  /** What zgInit/ZDApp do at every boot: act on STARTUP_OPTION, then recreate missing items. */
  private boot(reason: string): void {
    this.resetRam();
    this.bootedAt = Date.now();
    const option = this.nv.getLegacy(NV.STARTUP_OPTION)?.[0] ?? 0;
    if (option & StartupOption.CLEAR_STATE) {
      const clearCounters = (option & StartupOption.CLEAR_NWK_FRAME_COUNTER) !== 0;
      clearNetworkState(this.nv, clearCounters);
      this.log.info(`network state cleared${clearCounters ? " (frame counters too)" : ""}`);
    }
    if (option & StartupOption.CLEAR_CONFIG) {
      clearConfig(this.nv, this.hardwareIeee);
      this.log.info("configuration items reset to defaults");
    }
    const handled =
      option &
      (StartupOption.CLEAR_STATE | StartupOption.CLEAR_CONFIG | StartupOption.CLEAR_NWK_FRAME_COUNTER);
    if (handled) this.nv.setLegacy(NV.STARTUP_OPTION, Buffer.from([option & ~handled]));
    createMissingDefaults(this.nv, this.hardwareIeee);
    this.log.info(
      `booted (${reason})${handled ? `, acted on STARTUP_OPTION 0x${option.toString(16).padStart(2, "0")}` : ""}`,
    );
  }

  // ------------------------------------------------------------------ identity

  /** The IEEE the MAC uses: NV EXTADDR (writes apply at once, as on real firmware), else the factory one. */
  effectiveIeee(): Buffer {
    const ext = this.nv.getLegacy(NV.EXTADDR);
    return ext && ext.length === 8 ? Buffer.from(ext) : Buffer.from(this.hardwareIeee);
  }

  /** MT proxies the old 16-bit poll rate item to the low half of POLL_RATE; it always reads. */
  pollRateOld16(): Buffer {
    return Buffer.from(this.nv.getLegacy(NV.POLL_RATE)?.subarray(0, 2) ?? Buffer.alloc(2));
  }

  pollRateOld16IfStored(): Buffer | undefined {
    return this.nv.hasLegacy(NV.POLL_RATE) ? this.pollRateOld16() : undefined;
  }

  writePollRateOld16(offset: number, data: Buffer): void {
    const pollRate = this.nv.getLegacy(NV.POLL_RATE);
    if (!pollRate) return;
    const next = Buffer.from(pollRate);
    data.subarray(0, Math.max(0, 2 - offset)).copy(next, offset);
    this.nv.setLegacy(NV.POLL_RATE, next);
  }

  get uptimeSeconds(): number {
    return Math.floor((Date.now() - this.bootedAt) / 1000);
  }

  // ------------------------------------------------------------------ network

  nib(): Buffer | undefined {
    const nib = this.nv.getLegacy(NV.NIB);
    return nib && nib.length >= NIB_LENGTH ? nib : undefined;
  }

  isOnNetwork(): boolean {
    return this.nib() !== undefined && this.nv.getLegacy(NV.BDBNODEISONANETWORK)?.[0] === 1;
  }

  /** APP_CNF.bdbStartCommissioning. Only network formation (mode bit 0x04) is modelled. */
  startCommissioning(mode: number): void {
    const notify = (statusCode: number, remaining: number) =>
      this.sendAreq(Subsystem.APP_CNF, 0x80, Buffer.from([statusCode, 0x02, remaining]));
    if (!(mode & 0x04)) {
      this.log.info(`BDB commissioning mode 0x${mode.toString(16)} not modelled; reporting no network`);
      this.later(this.step, () => this.sendAreq(Subsystem.APP_CNF, 0x80, Buffer.from([0x02, 0x00, 0x00])));
      return;
    }
    if (this.devState !== DevState.HOLD) {
      this.log.info("formation requested while the stack runs; reporting success without change");
      this.later(this.step, () => notify(0x00, 0x00));
      return;
    }
    this.consumePendingNewNetworkState();
    if (this.isOnNetwork()) {
      this.log.info("formation requested but NV holds a network; resuming it");
      this.later(this.step, () => this.setDevState(DevState.COORD_STARTING));
      this.later(2 * this.step, () => {
        this.enterStarted();
        notify(0x00, 0x00);
      });
      return;
    }
    const mask = this.bdbChannels.primary || this.channelListFromNv();
    // Status InProgress, mode FORMATION, remaining 0x04: what a real CC2652P reports first.
    this.later(this.step, () => notify(0x01, 0x04));
    this.later(2 * this.step, () => this.setDevState(DevState.COORD_STARTING));
    this.later(3 * this.step, () => this.setDevState(DevState.COORD_STARTING));
    this.later(4 * this.step, () => {
      this.log.info(`formed network: ${describeNetwork(formNetwork(this.nv, mask, this.effectiveIeee()))}`);
      this.enterStarted();
    });
    this.later(5 * this.step, () => notify(0x00, 0x00));
  }

  /**
   * ZDO.startupFromApp: resume the network in NV (status 0, RESTORED_NETWORK_STATE) or, with none,
   * form one from PANID/CHANLIST (status 1, NEW_NETWORK_STATE) as ZDOInitDevice does.
   */
  startupFromApp(): number {
    if (this.devState !== DevState.HOLD) return 0x00;
    this.consumePendingNewNetworkState();
    if (this.isOnNetwork()) {
      this.setDevStateLater(this.step, DevState.COORD_STARTING);
      this.later(2 * this.step, () => this.enterStarted());
      return 0x00;
    }
    const mask = this.channelListFromNv();
    this.setDevStateLater(this.step, DevState.COORD_STARTING);
    this.later(3 * this.step, () => {
      this.log.info(`formed network: ${describeNetwork(formNetwork(this.nv, mask, this.effectiveIeee()))}`);
      this.enterStarted();
    });
    return 0x01;
  }

  /**
   * ZDOInitDevice reads STARTUP_OPTION 0x02 as "start a new network" and consumes it. The bit is
   * normally acted on at boot already; it is still pending here only on a chip whose NV was created
   * at this boot (the real reset dump shows 0x02 then) or if the host set it without a reset.
   * Without this, a network formed on a fresh chip would be wiped by its next reboot.
   */
  private consumePendingNewNetworkState(): void {
    const option = this.nv.getLegacy(NV.STARTUP_OPTION)?.[0] ?? 0;
    if (!(option & StartupOption.CLEAR_STATE)) return;
    clearNetworkState(this.nv, (option & StartupOption.CLEAR_NWK_FRAME_COUNTER) !== 0);
    this.nv.setLegacy(
      NV.STARTUP_OPTION,
      Buffer.from([option & ~(StartupOption.CLEAR_STATE | StartupOption.CLEAR_NWK_FRAME_COUNTER)]),
    );
  }

  private setDevStateLater(ms: number, state: number): void {
    this.later(ms, () => this.setDevState(state));
  }

  private setDevState(state: number): void {
    this.devState = state;
    this.sendAreq(Subsystem.ZDO, 0xc0, Buffer.from([state]));
  }

  private enterStarted(): void {
    const nib = this.nib();
    if (!nib) {
      this.log.info("cannot start: no NIB");
      return;
    }
    // Close the accounting period first so time spent before the start is not counted as traffic.
    this.tick();
    const epid = Buffer.from(nib.subarray(NIB_OFFSET.extendedPANID, NIB_OFFSET.extendedPANID + 8));
    const value = storedFrameCounter(this.nv, epid);
    this.counter = { epid, value, fraction: 0 };
    writeFrameCounter(this.nv, epid, value);
    this.raiseMax(value);
    this.setDevState(DevState.ZB_COORD);
    this.log.info(
      `network started: pan 0x${nib.readUInt16LE(NIB_OFFSET.nwkPanId).toString(16)}, channel ${nib[NIB_OFFSET.nwkLogicalChannel]}, frame counter ${value}`,
    );
  }

  private channelListFromNv(): number {
    return this.nv.getLegacy(NV.CHANLIST)?.readUInt32LE(0) ?? 0;
  }

  /** ZDO.mgmtNwkUpdateReq with scan duration 0xFE: move the network to another channel. */
  changeChannel(channelMask: number): void {
    const channel = lowestChannel(channelMask);
    if (channel === undefined || this.devState !== DevState.ZB_COORD) return;
    if (changeChannel(this.nv, channel)) this.log.info(`channel changed to ${channel}`);
  }

  // ------------------------------------------------------------------ frame counter

  private raiseMax(value: number): void {
    if (value > this.maxFc) {
      this.maxFc = value;
      this.onMetaChange();
    }
  }

  /** A frame went out on the air (data request, broadcast): one more frame counter value used. */
  noteTransmission(frames = 1): void {
    if (!this.counter) return;
    this.advanceCounter(frames);
  }

  private advanceCounter(frames: number): void {
    const counter = this.counter!;
    // Never lower a counter someone wrote into NV while the stack ran (e.g. an NVRAM copy).
    const stored = storedFrameCounter(this.nv, counter.epid);
    counter.value = Math.min(0xffffffff, Math.max(counter.value, stored) + frames);
    writeFrameCounter(this.nv, counter.epid, counter.value);
    this.raiseMax(counter.value);
  }

  /** Background traffic: advances while started and a host is connected. */
  private tick(): void {
    const now = Date.now();
    const elapsed = now - this.lastTick;
    this.lastTick = now;
    if (!this.counter || !this.host || this.devState !== DevState.ZB_COORD || this.fps <= 0) return;
    this.counter.fraction += (this.fps * elapsed) / 1000;
    const whole = Math.floor(this.counter.fraction);
    if (whole <= 0) return;
    this.counter.fraction -= whole;
    this.advanceCounter(whole);
  }

  currentFrameCounter(): number {
    if (this.counter) return this.counter.value;
    const nib = this.nib();
    return nib
      ? storedFrameCounter(this.nv, nib.subarray(NIB_OFFSET.extendedPANID, NIB_OFFSET.extendedPANID + 8))
      : 0;
  }

  setFrameCounter(value: number): void {
    const nib = this.nib();
    const epid = this.counter?.epid ?? nib?.subarray(NIB_OFFSET.extendedPANID, NIB_OFFSET.extendedPANID + 8);
    if (!epid) return;
    if (this.counter) this.counter.value = value;
    writeFrameCounter(this.nv, Buffer.from(epid), value);
    if (this.counter) this.raiseMax(value);
  }

  get maxNwkFrameCounter(): number {
    return this.maxFc;
  }

  /**
   * The lab's watermark starts again from the counter the running chip uses now (0 when it runs
   * no network): a test that gives a dongle a fresh network asks "highest counter since then".
   */
  resetMaxFrameCounter(): void {
    this.maxFc = this.counter?.value ?? 0;
    this.onMetaChange();
  }

  // ------------------------------------------------------------------ status

  status(unplugged: boolean): DeviceStatus {
    const nib = this.nib();
    return {
      ieee: ieeeToHex(this.effectiveIeee()),
      hardware_ieee: ieeeToHex(this.hardwareIeee),
      state: this.devState === DevState.ZB_COORD ? "started" : "hold",
      device_state: this.devState,
      nwk_frame_counter: this.currentFrameCounter(),
      max_nwk_frame_counter: this.maxFc,
      pan_id: nib ? nib.readUInt16LE(NIB_OFFSET.nwkPanId) : null,
      extended_pan_id: nib
        ? ieeeToHex(nib.subarray(NIB_OFFSET.extendedPANID, NIB_OFFSET.extendedPANID + 8))
        : null,
      channel: nib ? nib[NIB_OFFSET.nwkLogicalChannel]! : null,
      configured: nib !== undefined && this.nv.getLegacy(NV.HAS_CONFIGURED_ZSTACK3)?.[0] === 0x55,
      unplugged,
      host_connected: this.host !== undefined,
      frames_per_second: this.fps,
    };
  }
}

export { DevState, StartupOption } from "./constants.js";
