/**
 * A simulated TI CC2652 Z-Stack 3.x.0 coordinator as its host sees it over MT: boots into HOLD
 * (device state 0), forms or resumes a network (state 9), keeps NV across resets and power cycles
 * and loses everything in RAM (registered endpoints, BDB channel masks, the running frame counter).
 *
 * The behaviour follows /work/shared/ZNP-SIMULATOR.md (verified against zigbee-herdsman 10.9.2) and
 * what zigpy-znp 1.1.1's tools send; docs/simulator.md lists what is modelled and what is not.
 */
import { randomBytes, randomInt } from "node:crypto";
import { ieeeToHex, PayloadError, Reader, Writer } from "./codec.js";
import { DevState, StartupOption } from "./constants.js";
import {
  DEFAULT_LEGACY_ITEMS,
  DEFAULT_TABLES,
  defaultValue,
  EMPTY_APS_LINK_KEY_TABLE,
  FORMATION_TABLES,
  NIB_LENGTH,
  NIB_OFFSET,
  NIB_TEMPLATE,
} from "./defaults.js";
import { describeFrame, encodeFrame, FrameParser, type MtFrame, MtType, Subsystem } from "./frame.js";
import { AF_COMMANDS } from "./handlers/af.js";
import { APP_CNF_COMMANDS } from "./handlers/app-cnf.js";
import { SYS_COMMANDS, VERSION } from "./handlers/sys.js";
import type { CommandTable } from "./handlers/types.js";
import { UTIL_COMMANDS } from "./handlers/util.js";
import { ZDO_COMMANDS } from "./handlers/zdo.js";
import type { NvStore } from "./nv.js";
import { EX, NV, SYSID_ZSTACK } from "./nv-ids.js";

const TABLES: ReadonlyMap<number, CommandTable> = new Map([
  [Subsystem.SYS, SYS_COMMANDS],
  [Subsystem.AF, AF_COMMANDS],
  [Subsystem.ZDO, ZDO_COMMANDS],
  [Subsystem.UTIL, UTIL_COMMANDS],
  [Subsystem.APP_CNF, APP_CNF_COMMANDS],
]);

/** MT RPC error codes (MT_RPC.h). */
const RpcError = { SUBSYSTEM: 0x01, COMMAND_ID: 0x02, PARAMETER: 0x03, LENGTH: 0x04 } as const;

const GENERIC_EPID = Buffer.alloc(8, 0xff);
const ZERO_EPID = Buffer.alloc(8, 0x00);
const CHANNEL_MASK_2G4 = 0x07fff800;

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
      this.clearNetworkState((option & StartupOption.CLEAR_NWK_FRAME_COUNTER) !== 0);
    }
    if (option & StartupOption.CLEAR_CONFIG) this.clearConfig();
    const handled =
      option &
      (StartupOption.CLEAR_STATE | StartupOption.CLEAR_CONFIG | StartupOption.CLEAR_NWK_FRAME_COUNTER);
    if (handled) this.nv.setLegacy(NV.STARTUP_OPTION, Buffer.from([option & ~handled]));
    this.createMissingDefaults();
    this.log.info(
      `booted (${reason})${handled ? `, acted on STARTUP_OPTION 0x${option.toString(16).padStart(2, "0")}` : ""}`,
    );
  }

  private clearNetworkState(clearFrameCounters: boolean): void {
    this.nv.deleteLegacy(NV.NIB);
    for (const id of [NV.NWK_ACTIVE_KEY_INFO, NV.NWK_ALTERN_KEY_INFO, NV.NWKKEY]) {
      const v = this.nv.getLegacy(id);
      if (v) this.nv.setLegacy(id, Buffer.alloc(v.length));
    }
    if (this.nv.hasLegacy(NV.BDBNODEISONANETWORK))
      this.nv.setLegacy(NV.BDBNODEISONANETWORK, Buffer.from([0]));
    const linkKeys = this.nv.getLegacy(NV.APS_LINK_KEY_TABLE);
    if (linkKeys) this.nv.setLegacy(NV.APS_LINK_KEY_TABLE, Buffer.alloc(linkKeys.length, 0xff));
    const empties: Array<[number, (len: number) => Buffer]> = [
      [EX.ADDRMGR, (len) => Buffer.alloc(len, 0xff)],
      [EX.BINDING_TABLE, (len) => Buffer.alloc(len, 0xff)],
      [EX.DEVICE_LIST, (len) => Buffer.alloc(len, 0xff)],
      [EX.TCLK_TABLE, (len) => emptyTclkEntry(len)],
      [EX.TCLK_IC_TABLE, (len) => Buffer.alloc(len)],
      [EX.APS_KEY_DATA_TABLE, (len) => Buffer.alloc(len)],
    ];
    // The frame counters survive a factory reset unless bit 0x80 asks otherwise (ZComDef.h:
    // "FrameCounter should persist across factory resets").
    if (clearFrameCounters) empties.push([EX.NWK_SEC_MATERIAL_TABLE, (len) => Buffer.alloc(len)]);
    for (const [itemId, empty] of empties) {
      for (const sub of this.nv.tableSubIds(itemId)) {
        const v = this.nv.getExtended(SYSID_ZSTACK, itemId, sub)!;
        this.nv.setExtended(SYSID_ZSTACK, itemId, sub, empty(v.length));
      }
    }
    this.log.info(`network state cleared${clearFrameCounters ? " (frame counters too)" : ""}`);
  }

  private clearConfig(): void {
    const extAddr = this.nv.getLegacy(NV.EXTADDR) ?? this.hardwareIeee;
    for (const entry of DEFAULT_LEGACY_ITEMS) {
      if (entry.config) this.nv.setLegacy(entry.id, defaultValue(entry, this.hardwareIeee, extAddr));
    }
    this.log.info("configuration items reset to defaults");
  }

  private createMissingDefaults(): void {
    for (const entry of DEFAULT_LEGACY_ITEMS) {
      if (this.nv.hasLegacy(entry.id)) continue;
      const extAddr = this.nv.getLegacy(NV.EXTADDR) ?? this.hardwareIeee;
      this.nv.setLegacy(entry.id, defaultValue(entry, this.hardwareIeee, extAddr));
    }
    for (const [itemId, count, empty] of DEFAULT_TABLES) {
      for (let sub = 0; sub < count; sub++) {
        if (this.nv.getExtended(SYSID_ZSTACK, itemId, sub) === undefined) {
          this.nv.setExtended(SYSID_ZSTACK, itemId, sub, Buffer.from(empty, "hex"));
        }
      }
    }
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
      this.formNetwork(mask);
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
      this.formNetwork(mask);
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
    this.clearNetworkState((option & StartupOption.CLEAR_NWK_FRAME_COUNTER) !== 0);
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
    const value = this.storedFrameCounter(epid);
    this.counter = { epid, value, fraction: 0 };
    this.writeFrameCounter(epid, value);
    this.raiseMax(value);
    this.setDevState(DevState.ZB_COORD);
    this.log.info(
      `network started: pan 0x${nib.readUInt16LE(NIB_OFFSET.nwkPanId).toString(16)}, channel ${nib[NIB_OFFSET.nwkLogicalChannel]}, frame counter ${value}`,
    );
  }

  private channelListFromNv(): number {
    return this.nv.getLegacy(NV.CHANLIST)?.readUInt32LE(0) ?? 0;
  }

  /** What the stack writes when it forms a network (spec §3.4 "Formation"). */
  private formNetwork(channelMask: number): void {
    const channels = channelMask & CHANNEL_MASK_2G4;
    let channel = 11;
    for (let c = 11; c <= 26; c++) {
      if (channels & (1 << c)) {
        channel = c;
        break;
      }
    }
    let pan = this.nv.getLegacy(NV.PANID)?.readUInt16LE(0) ?? 0xffff;
    if (pan >= 0xfff8 || pan === 0) pan = randomInt(1, 0xfff7);
    const apsEpid = this.nv.getLegacy(NV.APS_USE_EXT_PANID);
    const epid =
      apsEpid && apsEpid.length === 8 && !apsEpid.equals(ZERO_EPID)
        ? Buffer.from(apsEpid)
        : Buffer.from(this.nv.getLegacy(NV.EXTENDED_PAN_ID) ?? this.effectiveIeee());
    const preconfigured = this.nv.getLegacy(NV.PRECFGKEY);
    const key = preconfigured && preconfigured.length === 16 ? Buffer.from(preconfigured) : randomBytes(16);

    const nib = Buffer.from(NIB_TEMPLATE, "hex");
    nib.writeUInt16LE(0x0000, NIB_OFFSET.nwkDevAddress);
    nib[NIB_OFFSET.nwkLogicalChannel] = channel;
    nib.writeUInt16LE(0x0000, NIB_OFFSET.nwkCoordAddress);
    nib.fill(0, NIB_OFFSET.nwkCoordExtAddress, NIB_OFFSET.nwkCoordExtAddress + 8);
    nib.writeUInt16LE(pan, NIB_OFFSET.nwkPanId);
    nib.writeUInt32LE((1 << channel) >>> 0, NIB_OFFSET.channelList);
    epid.copy(nib, NIB_OFFSET.extendedPANID);
    nib[NIB_OFFSET.nwkKeyLoaded] = 1;
    nib.writeUInt16LE(0x0000, NIB_OFFSET.nwkManagerAddr);
    nib[NIB_OFFSET.nwkUpdateId] = 0;
    this.nv.setLegacy(NV.NIB, nib);

    const keyInfo = Buffer.concat([Buffer.from([0x00]), key]);
    this.nv.setLegacy(NV.NWK_ACTIVE_KEY_INFO, keyInfo);
    this.nv.setLegacy(NV.NWK_ALTERN_KEY_INFO, keyInfo);
    const counter = this.storedFrameCounter(epid);
    const nwkKey = Buffer.alloc(24);
    keyInfo.copy(nwkKey, 0);
    nwkKey.fill(0xff, 17, 20);
    nwkKey.writeUInt32LE(counter, 20);
    this.nv.setLegacy(NV.NWKKEY, nwkKey);
    this.writeFrameCounter(epid, counter);
    this.nv.setLegacy(NV.BDBNODEISONANETWORK, Buffer.from([1]));
    const chanList = Buffer.alloc(4);
    chanList.writeUInt32LE((1 << channel) >>> 0);
    this.nv.setLegacy(NV.CHANLIST, chanList);
    const panBuf = Buffer.alloc(2);
    panBuf.writeUInt16LE(pan);
    this.nv.setLegacy(NV.PANID, panBuf);
    if (!this.nv.hasLegacy(NV.APS_LINK_KEY_TABLE)) {
      this.nv.setLegacy(NV.APS_LINK_KEY_TABLE, Buffer.from(EMPTY_APS_LINK_KEY_TABLE, "hex"));
    }
    for (const [itemId, count, empty] of FORMATION_TABLES) {
      if (this.nv.getExtended(SYSID_ZSTACK, itemId, 0) !== undefined) continue;
      for (let sub = 0; sub < count; sub++) {
        this.nv.setExtended(SYSID_ZSTACK, itemId, sub, Buffer.from(empty, "hex"));
      }
    }
    this.log.info(`formed network: pan 0x${pan.toString(16)}, epid ${ieeeToHex(epid)}, channel ${channel}`);
  }

  /** ZDO.mgmtNwkUpdateReq with scan duration 0xFE: move the network to another channel. */
  changeChannel(channelMask: number): void {
    const nib = this.nib();
    if (!nib || this.devState !== DevState.ZB_COORD) return;
    let channel = 0;
    for (let c = 11; c <= 26; c++) {
      if (channelMask & (1 << c)) {
        channel = c;
        break;
      }
    }
    if (!channel) return;
    const next = Buffer.from(nib);
    next[NIB_OFFSET.nwkLogicalChannel] = channel;
    next.writeUInt32LE((1 << channel) >>> 0, NIB_OFFSET.channelList);
    next[NIB_OFFSET.nwkUpdateId] = (next[NIB_OFFSET.nwkUpdateId]! + 1) & 0xff;
    this.nv.setLegacy(NV.NIB, next);
    const chanList = Buffer.alloc(4);
    chanList.writeUInt32LE((1 << channel) >>> 0);
    this.nv.setLegacy(NV.CHANLIST, chanList);
    this.log.info(`channel changed to ${channel}`);
  }

  // ------------------------------------------------------------------ frame counter

  /** The counter NV holds for a network: its own entry, else the generic (FF…) one, else 0. */
  storedFrameCounter(epid: Buffer): number {
    let generic: number | undefined;
    for (const entry of this.nv.table(EX.NWK_SEC_MATERIAL_TABLE)) {
      if (entry.length < 12) continue;
      const entryEpid = entry.subarray(4, 12);
      if (entryEpid.equals(epid)) return entry.readUInt32LE(0);
      if (generic === undefined && entryEpid.equals(GENERIC_EPID)) generic = entry.readUInt32LE(0);
    }
    return generic ?? 0;
  }

  /** Store a network's counter in its NWK_SEC_MATERIAL entry (or the first free one) and NWKKEY. */
  private writeFrameCounter(epid: Buffer, value: number): void {
    const entries = this.nv.table(EX.NWK_SEC_MATERIAL_TABLE);
    let index = entries.findIndex((e) => e.length >= 12 && e.subarray(4, 12).equals(epid));
    if (index < 0) index = entries.findIndex((e) => e.length >= 12 && e.subarray(4, 12).equals(ZERO_EPID));
    if (index < 0) index = entries.length - 1;
    if (index >= 0) {
      const entry = Buffer.alloc(12);
      entry.writeUInt32LE(value >>> 0, 0);
      (entries[index]!.subarray(4, 12).equals(GENERIC_EPID) ? GENERIC_EPID : epid).copy(entry, 4);
      if (!entry.equals(entries[index]!))
        this.nv.setExtended(SYSID_ZSTACK, EX.NWK_SEC_MATERIAL_TABLE, index, entry);
    }
    const nwkKey = this.nv.getLegacy(NV.NWKKEY);
    if (nwkKey && nwkKey.length === 24 && nwkKey.readUInt32LE(20) !== value >>> 0) {
      const next = Buffer.from(nwkKey);
      next.writeUInt32LE(value >>> 0, 20);
      this.nv.setLegacy(NV.NWKKEY, next);
    }
  }

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
    const stored = this.storedFrameCounter(counter.epid);
    counter.value = Math.min(0xffffffff, Math.max(counter.value, stored) + frames);
    this.writeFrameCounter(counter.epid, counter.value);
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
      ? this.storedFrameCounter(nib.subarray(NIB_OFFSET.extendedPANID, NIB_OFFSET.extendedPANID + 8))
      : 0;
  }

  setFrameCounter(value: number): void {
    const nib = this.nib();
    const epid = this.counter?.epid ?? nib?.subarray(NIB_OFFSET.extendedPANID, NIB_OFFSET.extendedPANID + 8);
    if (!epid) return;
    if (this.counter) this.counter.value = value;
    this.writeFrameCounter(Buffer.from(epid), value);
    if (this.counter) this.raiseMax(value);
  }

  get maxNwkFrameCounter(): number {
    return this.maxFc;
  }

  // ------------------------------------------------------------------ groups (NV GROUP_TABLE)

  /** GROUP_TABLE: u16 record count, then 20-byte records {endpoint, pad, groupId u16, name[16]}. */
  groups(): Array<{ endpoint: number; groupId: number; name: Buffer }> {
    const raw = this.nv.getLegacy(NV.GROUP_TABLE);
    if (!raw || raw.length < 2) return [];
    const count = raw.readUInt16LE(0);
    const out: Array<{ endpoint: number; groupId: number; name: Buffer }> = [];
    for (let i = 0; i < count && 2 + (i + 1) * 20 <= raw.length; i++) {
      const rec = raw.subarray(2 + i * 20, 2 + (i + 1) * 20);
      out.push({ endpoint: rec[0]!, groupId: rec.readUInt16LE(2), name: Buffer.from(rec.subarray(4, 20)) });
    }
    return out;
  }

  setGroups(groups: Array<{ endpoint: number; groupId: number; name: Buffer }>): void {
    const slots = Math.max(
      groups.length,
      Math.floor(((this.nv.getLegacy(NV.GROUP_TABLE)?.length ?? 2) - 2) / 20),
    );
    const raw = Buffer.alloc(2 + slots * 20, 0xff);
    raw.writeUInt16LE(groups.length, 0);
    groups.forEach((g, i) => {
      const rec = raw.subarray(2 + i * 20, 2 + (i + 1) * 20);
      rec[0] = g.endpoint;
      rec.writeUInt16LE(g.groupId, 2);
      rec.fill(0, 4);
      g.name.copy(rec, 4, 0, 16);
    });
    this.nv.setLegacy(NV.GROUP_TABLE, raw);
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

function emptyTclkEntry(len: number): Buffer {
  const b = Buffer.alloc(len);
  if (len > 16) b[16] = 0xff;
  return b;
}

/** Build the little-endian byte string of a u16 (handlers use it for short replies). */
export function u16(v: number): Buffer {
  return new Writer().u16(v).build();
}

export { DevState, StartupOption } from "./constants.js";
