/**
 * A simulated Silicon Labs EFR32 running the EmberZNet "zigbee_ncp" firmware, as its host sees it
 * over the UART: ASH (ash-ncp.ts) carrying EZSP in the extended frame format (v14+).
 *
 * What the firmware does and when (docs/simulator-ember.md has the sources):
 * - a reset (ASH RST from a host, RESET_NODE, power-on) loses everything in RAM: endpoints, the
 *   multicast table, configuration values, policies, the security state being prepared, and the
 *   running network. The network comes back only when a host calls networkInit: NVM3 tokens keep
 *   it, but the NCP firmware does not start it on its own;
 * - without a reset the network stays up whatever the host does: a host closing the port is
 *   invisible to a UART, so the chip keeps its network (and its frame counter) going;
 * - the outgoing NWK frame counter is a token: setInitialSecurityState resets it to 0 unless
 *   NO_FRAME_COUNTER_RESET is set, setValue(NWK_FRAME_COUNTER) sets it, the network's traffic
 *   advances it, leaving keeps it;
 * - the EUI64 is the CUSTOM_EUI_64 manufacturing token when it is written, else the factory one,
 *   read at boot; the token can be written only while blank (FLASH_WRITE_INHIBITED otherwise).
 */

import type { AshDecoded, AshFrame } from "../../../sidecar/coordinator/ember/ash.js";
import { describeAshFrame, ResetCode } from "../../../sidecar/coordinator/ember/ash.js";
import {
  ConfigId,
  EmberInitialSecurityBitmask,
  EmberNetworkStatus,
  EmberNodeType,
  EmberOutgoingMessageType,
  ExtendedValueId,
  EzspStatus,
  FrameId,
  frameName,
  MFG_TOKEN_LENGTH,
  MfgToken,
  SecManKeyType,
  SlStatus,
  STACK_TYPE_MESH,
  ValueId,
  VERSION_TYPE_GA,
} from "../../../sidecar/coordinator/ember/constants.js";
import {
  ByteReader,
  ByteWriter,
  decodeEzspCommand,
  type EzspCommand,
  EzspFrameError,
  encodeEzspResponse,
} from "../../../sidecar/coordinator/ember/ezsp-frame.js";
import { type Clock, realClock } from "../simulator/link.js";
import type { HostLink, Logger } from "../simulator/simulator.js";
import { AshNcp, type AshNcpStats } from "./ash-ncp.js";
import {
  COUNTER_COUNT,
  DEFAULT_CONFIG,
  DEFAULT_EZSP_VERSION,
  EZSP_VERSIONS,
  SILABS_MANUFACTURER_CODE,
} from "./constants.js";
import type { NetworkTokens, Tokens } from "./state-file.js";
import { answerZdoToSelf } from "./zdo.js";

export type { HostLink, Logger };

export interface EmberNcpOptions {
  tokens: Tokens;
  /** Factory EUI64, MSB first. */
  factoryEui64: string;
  maxNwkFrameCounter: number;
  /** NWK frames per second the network sends while it is up (routing, link status, many-to-one). */
  framesPerSecond: number;
  /** ASH RST (or RESET_NODE) → RSTACK. */
  resetDelayMs?: number;
  /** networkInit/formNetwork/leaveNetwork → their stack status callback. */
  stepDelayMs?: number;
  ezspVersion?: number;
  /** How often the running counter advances and reaches the tokens (≤ 1000 ms). */
  counterTickMs?: number;
  clock?: Clock;
  log?: Logger;
  /** One line per frame, both directions (ASH and the EZSP inside). */
  trace?: (line: string) => void;
  /** Tokens or the max counter changed: persist soon. */
  onStateChange?: () => void;
}

export type NcpState = "off" | "no_network" | "down" | "up";

export interface NcpStatus {
  /** off (unplugged), no_network (nothing in the tokens), down (a network in the tokens, radio silent), up */
  state: NcpState;
  network_up: boolean;
  /** The EUI64 the running stack uses (read at boot), MSB first. */
  eui64: string;
  factory_eui64: string;
  /** MFG_CUSTOM_EUI_64, MSB first, or null while blank. */
  custom_eui64_token: string | null;
  /** The EUI64 the next boot will use. */
  eui64_after_reset: string;
  configured: boolean;
  pan_id: number | null;
  /** As the host gave it (coordinator_backup.json's extended_pan_id). */
  extended_pan_id: string | null;
  channel: number | null;
  nwk_update_id: number | null;
  nwk_frame_counter: number;
  max_nwk_frame_counter: number;
  host_connected: boolean;
  frames_per_second: number;
  ezsp_version: number;
  permit_joining: boolean;
  ash_failed: boolean;
  /** The last counter a host set with setValue(NWK_FRAME_COUNTER) (herdsman's restore), or null. */
  host_set_nwk_frame_counter: number | null;
}

export interface NcpStats {
  frames_in: number;
  frames_out: number;
  callbacks_out: number;
  commands: Record<string, number>;
  /** EZSP frame ids the simulator does not implement (answered with INVALID_COMMAND). */
  unknown_frame_ids: string[];
  unknown_value_ids: number[];
  resets: number;
  ash: AshNcpStats;
}

interface Endpoint {
  endpoint: number;
  profileId: number;
  deviceId: number;
  deviceVersion: number;
  inClusters: number[];
  outClusters: number[];
}

interface SecurityState {
  bitmask: number;
  preconfiguredKey: string;
  networkKey: string;
  networkKeySequence: number;
}

/** What a reset loses. */
interface Ram {
  eui64: string;
  versionSet: boolean;
  networkUp: boolean;
  /** networkInit or formNetwork was called since the reset: configuration is frozen. */
  stackStarted: boolean;
  endpoints: Map<number, Endpoint>;
  multicast: Map<number, { multicastId: number; endpoint: number; networkIndex: number }>;
  config: Map<number, number>;
  policies: Map<number, number>;
  values: Map<number, Buffer>;
  manufacturerCode: number;
  security: SecurityState | undefined;
  extendedSecurityBitmask: number;
  permitJoining: boolean;
  apsSequence: number;
  lastSequence: number;
  counterFraction: number;
}

const ASH_FRAME_KINDS: ReadonlySet<string> = new Set(["data", "ack", "nak", "rst", "rstack", "error"]);

const noopLogger: Logger = { info: () => {}, debug: () => {} };

type Handler = (r: ByteReader, command: EzspCommand) => Buffer;

const status = (s: number) => new ByteWriter().u32(s).build();

export class EmberNcp {
  readonly tokens: Tokens;
  readonly factoryEui64: string;
  readonly ezspVersion: number;
  private readonly stackVersion: { major: number; minor: number; patch: number; build: number };
  private maxFc: number;
  private fps: number;
  private readonly resetDelayMs: number;
  private readonly stepDelayMs: number;
  private readonly tickMs: number;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly trace: ((line: string) => void) | undefined;
  private readonly onStateChange: () => void;
  private readonly ash: AshNcp;
  private readonly handlers: Map<number, Handler>;

  private host: HostLink | undefined;
  private poweredOn = false;
  private rebooting = false;
  private ram: Ram;
  /** Timers that belong to the running firmware: a reset cancels them. */
  private readonly timers = new Set<() => void>();
  private cancelTicker: (() => void) | undefined;
  private lastTick = 0;
  private permitJoinTimer: (() => void) | undefined;
  /** The last value a host wrote with setValue(NWK_FRAME_COUNTER): a lab observation, not chip RAM. */
  private hostCounterWrite: number | null = null;
  private stats: Omit<NcpStats, "ash"> = {
    frames_in: 0,
    frames_out: 0,
    callbacks_out: 0,
    commands: {},
    unknown_frame_ids: [],
    unknown_value_ids: [],
    resets: 0,
  };

  constructor(options: EmberNcpOptions) {
    this.tokens = options.tokens;
    this.factoryEui64 = options.factoryEui64;
    this.ezspVersion = options.ezspVersion ?? DEFAULT_EZSP_VERSION;
    const stack = EZSP_VERSIONS.get(this.ezspVersion);
    if (!stack)
      throw new RangeError(
        `EZSP version ${this.ezspVersion} not simulated (${[...EZSP_VERSIONS.keys()].join(", ")})`,
      );
    this.stackVersion = stack;
    this.maxFc = Math.max(options.maxNwkFrameCounter, options.tokens.nwkFrameCounter);
    this.fps = options.framesPerSecond;
    this.resetDelayMs = options.resetDelayMs ?? 1000;
    this.stepDelayMs = options.stepDelayMs ?? 150;
    this.tickMs = Math.min(options.counterTickMs ?? 500, 1000);
    this.clock = options.clock ?? realClock;
    this.log = options.log ?? noopLogger;
    this.trace = options.trace;
    this.onStateChange = options.onStateChange ?? (() => {});
    this.ram = this.freshRam();
    this.ash = new AshNcp(
      {
        write: (bytes) => this.host?.write(bytes),
        onReset: () => this.reboot("ASH RST"),
        onData: (data) => this.onEzspFrame(data),
        onTrace: this.trace ? (direction, what) => this.traceAsh(direction, what) : undefined,
      },
      this.clock,
    );
    this.handlers = this.buildHandlers();
  }

  // ------------------------------------------------------------------ power, reset and host

  powerOn(): void {
    if (this.poweredOn) return;
    this.poweredOn = true;
    this.boot();
    this.lastTick = this.clock.now();
    this.armTicker();
    this.log.info(`powered on (EUI64 ${this.ram.eui64})`);
  }

  /** Power removed: RAM lost, the host's port dies, the tokens stay as written. */
  powerOff(): void {
    if (!this.poweredOn) return;
    this.tick();
    this.poweredOn = false;
    this.rebooting = false;
    this.cancelFirmwareTimers();
    this.cancelTicker?.();
    this.cancelTicker = undefined;
    this.ash.dispose();
    this.ram = this.freshRam();
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

  /** A host opened the port. One at a time, like a serial port; false means refused. */
  attachHost(link: HostLink): boolean {
    if (!this.poweredOn || this.host !== undefined) return false;
    this.host = link;
    this.log.info(`host connected (${link.label})`);
    return true;
  }

  /** The host closed the port. A UART cannot tell: the chip carries on exactly as before. */
  detachHost(link: HostLink): void {
    if (this.host !== link) return;
    this.host = undefined;
    this.log.info(
      `host disconnected (${link.label}); network ${this.ram.networkUp ? "stays up" : "is not running"}`,
    );
  }

  receive(link: HostLink, chunk: Buffer): void {
    if (this.host !== link || !this.poweredOn || this.rebooting) return;
    this.ash.receive(chunk);
  }

  setFramesPerSecond(fps: number): void {
    this.tick();
    this.fps = fps;
  }

  /** What a host's RST (or RESET_NODE, or the control socket's `reset`) does: reboot, RSTACK after the boot time. */
  reboot(reason: string): void {
    if (!this.poweredOn) return;
    this.tick();
    this.stats.resets++;
    const wasUp = this.ram.networkUp;
    this.cancelFirmwareTimers();
    this.ram = this.freshRam();
    this.ash.reset();
    this.rebooting = true;
    this.log.info(`reset (${reason})${wasUp ? ": network down until a host calls networkInit" : ""}`);
    this.later(this.resetDelayMs, () => {
      this.rebooting = false;
      this.boot();
      this.ash.reset(ResetCode.SOFTWARE);
    });
  }

  private boot(): void {
    this.ram = this.freshRam();
  }

  private freshRam(): Ram {
    return {
      eui64: this.tokens.customEui64 ?? this.factoryEui64,
      versionSet: false,
      networkUp: false,
      stackStarted: false,
      endpoints: new Map(),
      multicast: new Map(),
      config: new Map(),
      policies: new Map(),
      values: new Map(),
      manufacturerCode: SILABS_MANUFACTURER_CODE,
      security: undefined,
      extendedSecurityBitmask: 0,
      permitJoining: false,
      apsSequence: 0,
      lastSequence: 0,
      counterFraction: 0,
    };
  }

  private later(ms: number, fn: () => void): void {
    const cancel = this.clock.timer(ms, () => {
      this.timers.delete(cancel);
      fn();
    });
    this.timers.add(cancel);
  }

  private cancelFirmwareTimers(): void {
    for (const cancel of this.timers) cancel();
    this.timers.clear();
    this.permitJoinTimer = undefined;
  }

  // ------------------------------------------------------------------ the network frame counter

  private armTicker(): void {
    this.cancelTicker = this.clock.timer(this.tickMs, () => {
      this.tick();
      if (this.poweredOn) this.armTicker();
    });
  }

  /** Advance the counter for the time the network was up. */
  private tick(): void {
    const now = this.clock.now();
    const elapsed = Math.max(0, now - this.lastTick);
    this.lastTick = now;
    if (!this.poweredOn || !this.ram.networkUp || this.fps <= 0) return;
    const exact = (this.fps * elapsed) / 1000 + this.ram.counterFraction;
    const whole = Math.floor(exact);
    this.ram.counterFraction = exact - whole;
    if (whole > 0) this.countFrames(whole);
  }

  private countFrames(n: number): void {
    this.tokens.nwkFrameCounter = Math.min(0xffffffff, this.tokens.nwkFrameCounter + n);
    if (this.tokens.nwkFrameCounter > this.maxFc) this.maxFc = this.tokens.nwkFrameCounter;
    this.onStateChange();
  }

  private setFrameCounter(value: number): void {
    this.tokens.nwkFrameCounter = value >>> 0;
    if (this.tokens.nwkFrameCounter > this.maxFc) this.maxFc = this.tokens.nwkFrameCounter;
    this.ram.counterFraction = 0;
    this.onStateChange();
  }

  get maxNwkFrameCounter(): number {
    return this.maxFc;
  }

  resetMaxFrameCounter(): void {
    this.tick();
    this.maxFc = this.tokens.nwkFrameCounter;
    this.onStateChange();
  }

  // ------------------------------------------------------------------ lab operations

  /**
   * Program MFG_CUSTOM_EUI_64 as a flasher would: only while blank, like the chip. Takes effect at
   * the next boot. Returns the SL status the NCP's setMfgToken would give.
   */
  writeCustomEui64(eui64: string): number {
    if (this.tokens.customEui64 !== null) return SlStatus.FLASH_WRITE_INHIBITED;
    this.tokens.customEui64 = eui64;
    this.onStateChange();
    this.log.info(`MFG_CUSTOM_EUI_64 written: ${eui64} (used from the next boot)`);
    return SlStatus.OK;
  }

  /** Forget the network as leaveNetwork does, without a host: the radio goes quiet. */
  leave(): void {
    this.tick();
    const wasUp = this.ram.networkUp;
    this.ram.networkUp = false;
    this.ram.permitJoining = false;
    this.tokens.network = null;
    this.onStateChange();
    if (wasUp) this.stackStatus(SlStatus.NETWORK_DOWN);
    this.log.info("left the network (network tokens erased)");
  }

  status(unplugged: boolean): NcpStatus {
    this.tick();
    const network = this.tokens.network;
    const state: NcpState =
      !this.poweredOn || unplugged ? "off" : this.ram.networkUp ? "up" : network ? "down" : "no_network";
    return {
      state,
      network_up: this.poweredOn && this.ram.networkUp,
      eui64: this.ram.eui64,
      factory_eui64: this.factoryEui64,
      custom_eui64_token: this.tokens.customEui64,
      eui64_after_reset: this.tokens.customEui64 ?? this.factoryEui64,
      configured: network !== null,
      pan_id: network?.panId ?? null,
      extended_pan_id: network?.extendedPanId ?? null,
      channel: network?.channel ?? null,
      nwk_update_id: network?.nwkUpdateId ?? null,
      nwk_frame_counter: this.tokens.nwkFrameCounter,
      max_nwk_frame_counter: this.maxFc,
      host_connected: this.host !== undefined,
      frames_per_second: this.fps,
      ezsp_version: this.ezspVersion,
      permit_joining: this.ram.permitJoining,
      ash_failed: this.ash.isFailed,
      host_set_nwk_frame_counter: this.hostCounterWrite,
    };
  }

  getStats(): NcpStats {
    return { ...this.stats, commands: { ...this.stats.commands }, ash: { ...this.ash.stats } };
  }

  // ------------------------------------------------------------------ EZSP

  private traceAsh(direction: "in" | "out", what: AshFrame | AshDecoded): void {
    const arrow = direction === "in" ? "<--" : "-->";
    if (ASH_FRAME_KINDS.has(what.kind)) this.trace?.(`${arrow} ${describeAshFrame(what as AshFrame)}`);
    else this.trace?.(`${arrow} (dropped: ${JSON.stringify(what)})`);
  }

  private onEzspFrame(data: Buffer): void {
    this.stats.frames_in++;
    let command: EzspCommand;
    try {
      command = decodeEzspCommand(data);
    } catch (error) {
      this.log.info(`undecodable EZSP frame ${data.toString("hex")}: ${(error as Error).message}`);
      if (data.length >= 3)
        this.respond(
          data[0]!,
          FrameId.INVALID_COMMAND,
          Buffer.from([EzspStatus.ERROR_UNSUPPORTED_CONTROL]),
          false,
        );
      return;
    }
    this.ram.lastSequence = command.sequence;
    const name = frameName(command.frameId);
    this.stats.commands[name] = (this.stats.commands[name] ?? 0) + 1;
    this.trace?.(`    EZSP ${name} seq=${command.sequence} ${command.parameters.toString("hex")}`);
    const handler = this.handlers.get(command.frameId);
    if (!handler) {
      const id = `0x${command.frameId.toString(16).padStart(4, "0")}`;
      if (!this.stats.unknown_frame_ids.includes(id)) this.stats.unknown_frame_ids.push(id);
      this.log.info(`unknown EZSP frame id ${id}: INVALID_COMMAND`);
      this.respond(
        command.sequence,
        FrameId.INVALID_COMMAND,
        Buffer.from([EzspStatus.ERROR_INVALID_FRAME_ID]),
        false,
      );
      return;
    }
    if (command.frameId !== FrameId.VERSION && (!this.ram.versionSet || command.legacy)) {
      // UG100: after a reset the first command must be VERSION; only it may use the legacy header.
      const code = this.ram.versionSet
        ? EzspStatus.ERROR_UNSUPPORTED_CONTROL
        : EzspStatus.ERROR_VERSION_NOT_SET;
      this.respond(command.sequence, FrameId.INVALID_COMMAND, Buffer.from([code]), command.legacy);
      return;
    }
    let parameters: Buffer;
    try {
      parameters = handler(new ByteReader(command.parameters), command);
    } catch (error) {
      if (!(error instanceof EzspFrameError)) throw error;
      this.log.info(`${name}: ${error.message}`);
      this.respond(
        command.sequence,
        FrameId.INVALID_COMMAND,
        Buffer.from([EzspStatus.ERROR_INVALID_VALUE]),
        false,
      );
      return;
    }
    this.respond(command.sequence, command.frameId, parameters, command.legacy);
  }

  private respond(sequence: number, frameId: number, parameters: Buffer, legacy: boolean): void {
    this.stats.frames_out++;
    const frame = encodeEzspResponse({ sequence, frameId, parameters, legacy });
    this.trace?.(`    EZSP ${frameName(frameId)} response ${parameters.toString("hex")}`);
    this.ash.send(frame, false);
  }

  /** A callback the NCP sends on its own (UART hosts get them asynchronously). */
  private callback(frameId: number, parameters: Buffer): void {
    if (!this.host || this.rebooting) return;
    this.stats.callbacks_out++;
    this.trace?.(`    EZSP ${frameName(frameId)} callback ${parameters.toString("hex")}`);
    this.ash.send(
      encodeEzspResponse({ sequence: this.ram.lastSequence, frameId, parameters, callback: true }),
      true,
    );
  }

  private stackStatus(code: number): void {
    this.callback(FrameId.STACK_STATUS_HANDLER, status(code));
  }

  private networkParameters(w: ByteWriter, n: NetworkTokens): ByteWriter {
    return w
      .bytes(Buffer.from(n.extendedPanId, "hex"))
      .u16(n.panId)
      .u8(n.radioTxPower)
      .u8(n.channel)
      .u8(n.joinMethod)
      .u16(n.nwkManagerId)
      .u8(n.nwkUpdateId)
      .u32(n.channels);
  }

  private buildHandlers(): Map<number, Handler> {
    const h = new Map<number, Handler>();
    const ok = () => status(SlStatus.OK);
    const empty = () => Buffer.alloc(0);

    h.set(FrameId.VERSION, (r) => {
      const desired = r.u8();
      this.ram.versionSet = true;
      if (desired !== this.ezspVersion)
        this.log.debug(`host asked for EZSP v${desired}; this NCP speaks v${this.ezspVersion}`);
      const v = this.stackVersion;
      return new ByteWriter()
        .u8(this.ezspVersion)
        .u8(STACK_TYPE_MESH)
        .u16((v.major << 12) | (v.minor << 8) | (v.patch << 4))
        .build();
    });

    h.set(FrameId.NOP, empty);
    h.set(FrameId.ECHO, (r) => new ByteWriter().payload(r.payload()).build());

    h.set(FrameId.GET_CONFIGURATION_VALUE, (r) => {
      const id = r.u8();
      const value = this.ram.config.get(id) ?? DEFAULT_CONFIG.get(id);
      if (value === undefined) return new ByteWriter().u32(SlStatus.INVALID_PARAMETER).u16(0).build();
      return new ByteWriter().u32(SlStatus.OK).u16(value).build();
    });
    h.set(FrameId.SET_CONFIGURATION_VALUE, (r) => {
      const id = r.u8();
      const value = r.u16();
      // Table sizes are allocated when the stack starts; afterwards the NCP refuses changes.
      if (this.ram.stackStarted) return status(SlStatus.INVALID_STATE);
      this.ram.config.set(id, value);
      return ok();
    });
    h.set(FrameId.SET_POLICY, (r) => {
      this.ram.policies.set(r.u8(), r.u8());
      return ok();
    });
    h.set(FrameId.GET_POLICY, (r) => {
      const id = r.u8();
      const decision = this.ram.policies.get(id);
      return new ByteWriter()
        .u32(decision === undefined ? SlStatus.NOT_FOUND : SlStatus.OK)
        .u8(decision ?? 0)
        .build();
    });

    h.set(FrameId.GET_VALUE, (r) => {
      const id = r.u8();
      const value = this.getValue(id);
      if (!value) return new ByteWriter().u32(SlStatus.INVALID_PARAMETER).u8(0).build();
      return new ByteWriter().u32(SlStatus.OK).payload(value).build();
    });
    h.set(FrameId.SET_VALUE, (r) => {
      const id = r.u8();
      const value = r.payload();
      return status(this.setValue(id, value));
    });
    h.set(FrameId.GET_EXTENDED_VALUE, (r) => {
      const id = r.u8();
      const characteristics = r.u32();
      if (id === ExtendedValueId.ENDPOINT_FLAGS) {
        const registered = this.ram.endpoints.has(characteristics);
        // The NCP always returns the two flag bytes; the status says whether the endpoint exists.
        return new ByteWriter()
          .u32(registered ? SlStatus.OK : SlStatus.INVALID_INDEX)
          .payload(Buffer.from([registered ? 1 : 0, 0]))
          .build();
      }
      return new ByteWriter().u32(SlStatus.INVALID_PARAMETER).u8(0).build();
    });

    h.set(FrameId.SET_MANUFACTURER_CODE, (r) => {
      this.ram.manufacturerCode = r.u16();
      return empty();
    });
    h.set(FrameId.GET_MANUFACTURER_CODE, () => new ByteWriter().u16(this.ram.manufacturerCode).build());

    h.set(FrameId.ADD_ENDPOINT, (r) => {
      const endpoint = r.u8();
      const profileId = r.u16();
      const deviceId = r.u16();
      const deviceVersion = r.u8();
      const inCount = r.u8();
      const outCount = r.u8();
      const inClusters = Array.from({ length: inCount }, () => r.u16());
      const outClusters = Array.from({ length: outCount }, () => r.u16());
      if (endpoint === 0 || endpoint === 0xff) return status(SlStatus.INVALID_PARAMETER);
      // herdsman: "if ezspInit is called without NCP reset, ezspAddEndpoint ... will return an error".
      if (this.ram.endpoints.has(endpoint) || this.ram.stackStarted) return status(SlStatus.INVALID_STATE);
      this.ram.endpoints.set(endpoint, {
        endpoint,
        profileId,
        deviceId,
        deviceVersion,
        inClusters,
        outClusters,
      });
      return ok();
    });

    h.set(FrameId.SET_MULTICAST_TABLE_ENTRY, (r) => {
      const index = r.u8();
      const multicastId = r.u16();
      const endpoint = r.u8();
      const networkIndex = r.u8();
      if (index >= this.configValue(ConfigId.MULTICAST_TABLE_SIZE)) return status(SlStatus.INVALID_INDEX);
      this.ram.multicast.set(index, { multicastId, endpoint, networkIndex });
      return ok();
    });
    h.set(FrameId.GET_MULTICAST_TABLE_ENTRY, (r) => {
      const index = r.u8();
      const entry = this.ram.multicast.get(index);
      if (index >= this.configValue(ConfigId.MULTICAST_TABLE_SIZE))
        return new ByteWriter().u32(SlStatus.INVALID_INDEX).u16(0).u8(0).u8(0).build();
      return new ByteWriter()
        .u32(SlStatus.OK)
        .u16(entry?.multicastId ?? 0)
        .u8(entry?.endpoint ?? 0)
        .u8(entry?.networkIndex ?? 0)
        .build();
    });

    h.set(FrameId.NETWORK_INIT, (r) => {
      r.u16(); // EmberNetworkInitBitmask: parent info in token, end-device rejoin; a coordinator ignores both
      if (this.ram.networkUp || this.ram.stackStarted) return status(SlStatus.INVALID_STATE);
      const network = this.tokens.network;
      if (!network) return status(SlStatus.NOT_JOINED);
      this.ram.stackStarted = true;
      this.later(this.stepDelayMs, () => this.networkUp("networkInit"));
      return ok();
    });
    h.set(FrameId.NETWORK_STATE, () =>
      Buffer.from([this.ram.networkUp ? EmberNetworkStatus.JOINED_NETWORK : EmberNetworkStatus.NO_NETWORK]),
    );
    h.set(FrameId.GET_NETWORK_PARAMETERS, () => {
      const n = this.tokens.network;
      const w = new ByteWriter();
      if (!this.ram.networkUp || !n) {
        w.u32(SlStatus.NOT_JOINED).u8(EmberNodeType.UNKNOWN);
        return w.bytes(Buffer.alloc(20)).build();
      }
      w.u32(SlStatus.OK).u8(n.nodeType);
      return this.networkParameters(w, n).build();
    });
    h.set(FrameId.GET_EUI64, () => new ByteWriter().eui64(this.ram.eui64).build());
    h.set(FrameId.GET_NODE_ID, () =>
      new ByteWriter().u16(this.ram.networkUp ? (this.tokens.network?.nodeId ?? 0) : 0xfffe).build(),
    );
    h.set(FrameId.GET_EXTENDED_PAN_ID, () =>
      Buffer.from(
        this.tokens.network && this.ram.networkUp ? this.tokens.network.extendedPanId : "0000000000000000",
        "hex",
      ),
    );
    h.set(FrameId.GET_RADIO_CHANNEL, () => Buffer.from([this.tokens.network?.channel ?? 11]));

    h.set(FrameId.SET_INITIAL_SECURITY_STATE, (r) => {
      const bitmask = r.u16();
      const preconfiguredKey = r.bytes(16).toString("hex");
      const networkKey = r.bytes(16).toString("hex");
      const networkKeySequence = r.u8();
      r.eui64(); // preconfigured trust-centre EUI64: a coordinator is the trust centre
      if (this.ram.networkUp) return status(SlStatus.INVALID_STATE);
      this.ram.security = { bitmask, preconfiguredKey, networkKey, networkKeySequence };
      if (!(bitmask & EmberInitialSecurityBitmask.NO_FRAME_COUNTER_RESET)) {
        this.log.info(
          `setInitialSecurityState: outgoing NWK frame counter reset to 0 (was ${this.tokens.nwkFrameCounter})`,
        );
        this.setFrameCounter(0);
      } else {
        this.log.info(
          `setInitialSecurityState: NO_FRAME_COUNTER_RESET, counter stays ${this.tokens.nwkFrameCounter}`,
        );
      }
      return ok();
    });
    h.set(FrameId.FORM_NETWORK, (r) => {
      const extendedPanId = r.bytes(8).toString("hex");
      const panId = r.u16();
      const radioTxPower = r.u8();
      const channel = r.u8();
      const joinMethod = r.u8();
      const nwkManagerId = r.u16();
      const nwkUpdateId = r.u8();
      const channels = r.u32();
      if (this.ram.networkUp) return status(SlStatus.INVALID_STATE);
      const security = this.ram.security;
      if (!security) return status(SlStatus.ZIGBEE_SECURITY_STATE_NOT_SET);
      if (channel < 11 || channel > 26) return status(SlStatus.INVALID_PARAMETER);
      this.tokens.network = {
        nodeType: EmberNodeType.COORDINATOR,
        nodeId: 0x0000,
        panId,
        extendedPanId,
        channel,
        radioTxPower,
        joinMethod,
        nwkManagerId,
        nwkUpdateId,
        channels,
        networkKey: security.networkKey,
        networkKeySequence: security.networkKeySequence,
        tcLinkKey: security.preconfiguredKey,
        securityBitmask: security.bitmask,
        extendedSecurityBitmask: this.ram.extendedSecurityBitmask,
      };
      this.ram.stackStarted = true;
      this.onStateChange();
      this.log.info(
        `formNetwork: PAN 0x${panId.toString(16).padStart(4, "0")} EPID ${extendedPanId} channel ${channel}, counter ${this.tokens.nwkFrameCounter}`,
      );
      this.later(this.stepDelayMs, () => this.networkUp("formNetwork"));
      return ok();
    });
    h.set(FrameId.LEAVE_NETWORK, (r) => {
      if (r.remaining > 0) r.u8(); // EmberLeaveNetworkOption (v14+)
      if (!this.ram.networkUp) return status(SlStatus.INVALID_STATE);
      this.later(this.stepDelayMs, () => this.leave());
      return ok();
    });
    h.set(FrameId.PERMIT_JOINING, (r) => {
      const duration = r.u8();
      if (!this.ram.networkUp) return status(SlStatus.NETWORK_DOWN);
      this.setPermitJoining(duration);
      return ok();
    });

    h.set(FrameId.EXPORT_KEY, (r) => {
      const context = r.bytes(18);
      const keyType = context[0]!;
      const n = this.tokens.network;
      let key: string | undefined;
      if (keyType === SecManKeyType.NETWORK && context[1] === 0) key = n?.networkKey;
      else if (keyType === SecManKeyType.TC_LINK) key = n?.tcLinkKey;
      const w = new ByteWriter().u32(key ? SlStatus.OK : SlStatus.NOT_FOUND);
      return w
        .bytes(key ? Buffer.from(key, "hex") : Buffer.alloc(16))
        .bytes(context)
        .build();
    });
    h.set(FrameId.GET_NETWORK_KEY_INFO, () => {
      const n = this.tokens.network;
      this.tick();
      return new ByteWriter()
        .u32(SlStatus.OK)
        .u8(n ? 1 : 0)
        .u8(0)
        .u8(n?.networkKeySequence ?? 0)
        .u8(0)
        .u32(this.tokens.nwkFrameCounter)
        .build();
    });
    h.set(FrameId.CLEAR_KEY_TABLE, () => {
      this.tokens.keyTable = [];
      this.onStateChange();
      return ok();
    });
    h.set(FrameId.ERASE_KEY_TABLE_ENTRY, (r) => {
      const index = r.u8();
      if (index >= this.configValue(ConfigId.KEY_TABLE_SIZE)) return status(SlStatus.INVALID_INDEX);
      this.tokens.keyTable[index] = null;
      this.onStateChange();
      return ok();
    });
    h.set(FrameId.IMPORT_LINK_KEY, (r) => {
      const index = r.u8();
      const eui64 = r.eui64();
      const key = r.bytes(16).toString("hex");
      if (index >= this.configValue(ConfigId.KEY_TABLE_SIZE)) return status(SlStatus.INVALID_INDEX);
      while (this.tokens.keyTable.length < index) this.tokens.keyTable.push(null);
      this.tokens.keyTable[index] = { eui64, key };
      this.onStateChange();
      return ok();
    });
    h.set(FrameId.EXPORT_LINK_KEY_BY_INDEX, (r) => {
      const index = r.u8();
      const entry = this.tokens.keyTable[index] ?? null;
      const w = new ByteWriter().u32(entry ? SlStatus.OK : SlStatus.NOT_FOUND);
      // sl_zigbee_sec_man_context_t, then the key, then sl_zigbee_sec_man_aps_key_metadata_t
      w.u8(SecManKeyType.APP_LINK)
        .u8(index)
        .u16(0)
        .eui64(entry?.eui64 ?? "0000000000000000")
        .u8(0)
        .u8(0)
        .u32(0);
      w.bytes(entry ? Buffer.from(entry.key, "hex") : Buffer.alloc(16));
      return w.u16(0).u32(0).u32(0).u16(0).build();
    });
    h.set(FrameId.IMPORT_TRANSIENT_KEY, (r) => {
      r.eui64();
      r.bytes(16);
      return ok();
    });
    h.set(FrameId.CLEAR_TRANSIENT_LINK_KEYS, empty);

    h.set(FrameId.SET_CONCENTRATOR, (r) => {
      r.u8();
      r.u16();
      r.u16();
      r.u16();
      r.u8();
      r.u8();
      r.u8();
      return ok();
    });
    h.set(FrameId.SET_SOURCE_ROUTE_DISCOVERY_MODE, (r) => {
      const mode = r.u8();
      // Time to the next many-to-one route request: the concentrator's minimum time when on.
      return new ByteWriter().u32(mode === 0 ? 0 : 5000).build();
    });
    h.set(FrameId.SET_RADIO_POWER, (r) => {
      const power = r.i8();
      const n = this.tokens.network;
      if (n) {
        n.radioTxPower = power < 0 ? power + 256 : power;
        this.onStateChange();
      }
      return ok();
    });
    h.set(FrameId.SET_LOGICAL_AND_RADIO_CHANNEL, (r) => {
      const channel = r.u8();
      return status(channel >= 11 && channel <= 26 ? SlStatus.OK : SlStatus.INVALID_PARAMETER);
    });

    h.set(FrameId.SEND_UNICAST, (r) => {
      const type = r.u8();
      const destination = r.u16();
      const aps = this.readApsFrame(r);
      const tag = r.u16();
      const message = r.payload();
      return this.sendMessage(type, destination, aps, tag, message);
    });
    h.set(FrameId.SEND_BROADCAST, (r) => {
      r.u16(); // alias
      const destination = r.u16();
      r.u8(); // alias sequence
      const aps = this.readApsFrame(r);
      r.u8(); // radius
      const tag = r.u16();
      const message = r.payload();
      return this.sendMessage(EmberOutgoingMessageType.BROADCAST, destination, aps, tag, message);
    });
    h.set(FrameId.SEND_MULTICAST, (r) => {
      const aps = this.readApsFrame(r);
      r.u8(); // hops
      r.u16(); // broadcast address
      r.u16(); // alias
      r.u8(); // alias sequence
      const tag = r.u16();
      const message = r.payload();
      return this.sendMessage(EmberOutgoingMessageType.MULTICAST, aps.groupId, aps, tag, message);
    });

    h.set(FrameId.GET_MFG_TOKEN, (r) => {
      const id = r.u8();
      const length = MFG_TOKEN_LENGTH.get(id);
      if (length === undefined) return Buffer.from([0]);
      let data = Buffer.alloc(length, 0xff);
      if (id === MfgToken.CUSTOM_EUI_64 && this.tokens.customEui64)
        data = Buffer.from(this.tokens.customEui64, "hex").reverse();
      if (id === MfgToken.MANUF_ID) data = Buffer.from([0x02, 0x10]);
      return new ByteWriter().payload(data).build();
    });
    h.set(FrameId.SET_MFG_TOKEN, (r) => {
      const id = r.u8();
      const data = r.payload();
      if (id !== MfgToken.CUSTOM_EUI_64) {
        // The other manufacturing tokens are programmed at the factory: treat them as written.
        return status(SlStatus.FLASH_WRITE_INHIBITED);
      }
      if (data.length !== 8) return status(SlStatus.INVALID_PARAMETER);
      const result = this.writeCustomEui64(Buffer.from(data).reverse().toString("hex"));
      if (result !== SlStatus.OK)
        this.log.info(
          `setMfgToken(CUSTOM_EUI_64) refused: already ${this.tokens.customEui64} (one-time token)`,
        );
      return status(result);
    });

    h.set(FrameId.READ_AND_CLEAR_COUNTERS, () => Buffer.alloc(COUNTER_COUNT * 2));
    h.set(FrameId.READ_COUNTERS, () => Buffer.alloc(COUNTER_COUNT * 2));

    h.set(FrameId.TOKEN_FACTORY_RESET, (r) => {
      const excludeOutgoingFc = r.u8() !== 0;
      r.u8(); // exclude boot counter: the simulator keeps no boot counter
      // Assumption (not checked on hardware): with its tokens gone the stack cannot keep a network.
      if (this.ram.networkUp) this.leave();
      this.tokens.network = null;
      this.tokens.keyTable = [];
      if (!excludeOutgoingFc) this.setFrameCounter(0);
      this.onStateChange();
      this.log.info(
        `tokenFactoryReset: network tokens erased${excludeOutgoingFc ? ", frame counter kept" : ""}`,
      );
      return empty();
    });
    h.set(FrameId.RESET_NODE, () => {
      // Answer first, then reboot: the host sees the reply and then an RSTACK.
      this.later(20, () => this.reboot("RESET_NODE"));
      return empty();
    });
    return h;
  }

  private configValue(id: number): number {
    return this.ram.config.get(id) ?? DEFAULT_CONFIG.get(id) ?? 0;
  }

  private getValue(id: number): Buffer | undefined {
    switch (id) {
      case ValueId.VERSION_INFO: {
        const v = this.stackVersion;
        return new ByteWriter()
          .u16(v.build)
          .u8(v.major)
          .u8(v.minor)
          .u8(v.patch)
          .u8(0)
          .u8(VERSION_TYPE_GA)
          .build();
      }
      case ValueId.NWK_FRAME_COUNTER:
        this.tick();
        return new ByteWriter().u32(this.tokens.nwkFrameCounter).build();
      case ValueId.NODE_SHORT_ID:
        return new ByteWriter().u16(this.ram.networkUp ? 0 : 0xfffe).build();
      case ValueId.EXTENDED_SECURITY_BITMASK:
        return new ByteWriter().u16(this.ram.extendedSecurityBitmask).build();
      default:
        return this.ram.values.get(id);
    }
  }

  private setValue(id: number, value: Buffer): number {
    switch (id) {
      case ValueId.NWK_FRAME_COUNTER:
        if (value.length !== 4) return SlStatus.INVALID_PARAMETER;
        this.tick();
        this.log.info(
          `setValue(NWK_FRAME_COUNTER, ${value.readUInt32LE(0)}) (was ${this.tokens.nwkFrameCounter})`,
        );
        this.setFrameCounter(value.readUInt32LE(0));
        this.hostCounterWrite = value.readUInt32LE(0);
        return SlStatus.OK;
      case ValueId.EXTENDED_SECURITY_BITMASK:
        if (value.length !== 2) return SlStatus.INVALID_PARAMETER;
        this.ram.extendedSecurityBitmask = value.readUInt16LE(0);
        return SlStatus.OK;
      case ValueId.STACK_TOKEN_WRITING:
      case ValueId.CCA_THRESHOLD:
      case ValueId.TRANSIENT_DEVICE_TIMEOUT:
      case ValueId.APS_FRAME_COUNTER:
        this.ram.values.set(id, Buffer.from(value));
        return SlStatus.OK;
      default:
        if (!this.stats.unknown_value_ids.includes(id)) this.stats.unknown_value_ids.push(id);
        this.ram.values.set(id, Buffer.from(value));
        return SlStatus.OK;
    }
  }

  private networkUp(how: string): void {
    if (!this.tokens.network) return;
    this.tick();
    this.ram.networkUp = true;
    this.lastTick = this.clock.now();
    this.log.info(`network up (${how}), NWK frame counter ${this.tokens.nwkFrameCounter}`);
    this.stackStatus(SlStatus.NETWORK_UP);
  }

  private setPermitJoining(duration: number): void {
    this.permitJoinTimer?.();
    this.permitJoinTimer = undefined;
    const was = this.ram.permitJoining;
    // One NWK frame: the coordinator's beacon payload changes, routers learn via the ZDO broadcast.
    if (duration > 0) {
      this.ram.permitJoining = true;
      if (!was) this.stackStatus(SlStatus.ZIGBEE_NETWORK_OPENED);
      if (duration < 0xff) {
        const cancel = this.clock.timer(duration * 1000, () => {
          this.timers.delete(cancel);
          this.permitJoinTimer = undefined;
          this.ram.permitJoining = false;
          this.stackStatus(SlStatus.ZIGBEE_NETWORK_CLOSED);
        });
        this.timers.add(cancel);
        this.permitJoinTimer = cancel;
      }
    } else {
      this.ram.permitJoining = false;
      if (was) this.stackStatus(SlStatus.ZIGBEE_NETWORK_CLOSED);
    }
  }

  private readApsFrame(r: ByteReader): ApsFrame {
    return {
      profileId: r.u16(),
      clusterId: r.u16(),
      sourceEndpoint: r.u8(),
      destinationEndpoint: r.u8(),
      options: r.u16(),
      groupId: r.u16(),
      sequence: r.u8(),
    };
  }

  private writeApsFrame(w: ByteWriter, aps: ApsFrame): ByteWriter {
    return w
      .u16(aps.profileId)
      .u16(aps.clusterId)
      .u8(aps.sourceEndpoint)
      .u8(aps.destinationEndpoint)
      .u16(aps.options)
      .u16(aps.groupId)
      .u8(aps.sequence);
  }

  /**
   * Unicast, broadcast or multicast: one NWK frame on the air (the counter moves), then the
   * messageSent callback. There are no other nodes: a unicast to another node fails delivery after
   * the APS retries; one to the coordinator itself (herdsman's interview of its own endpoints) is
   * answered by the stack's ZDO, as on the real NCP.
   */
  private sendMessage(
    type: number,
    destination: number,
    aps: ApsFrame,
    tag: number,
    message: Buffer,
  ): Buffer {
    if (!this.ram.networkUp) return new ByteWriter().u32(SlStatus.NETWORK_DOWN).u8(0).build();
    this.ram.apsSequence = (this.ram.apsSequence + 1) & 0xff;
    const sent: ApsFrame = { ...aps, sequence: this.ram.apsSequence };
    this.tick();
    this.countFrames(1);
    const self = this.tokens.network?.nodeId ?? 0;
    const sentCallback = (code: number, delay: number) =>
      this.later(delay, () =>
        this.callback(
          FrameId.MESSAGE_SENT_HANDLER,
          this.writeApsFrame(new ByteWriter().u32(code).u8(type).u16(destination), sent)
            .u16(tag)
            .u8(0)
            .build(),
        ),
      );
    const isUnicast =
      type === EmberOutgoingMessageType.DIRECT ||
      type === EmberOutgoingMessageType.VIA_ADDRESS_TABLE ||
      type === EmberOutgoingMessageType.VIA_BINDING;
    if (isUnicast && destination === self) {
      sentCallback(SlStatus.OK, 5);
      const reply = answerZdoToSelf(aps, message, {
        nodeId: self,
        eui64: this.ram.eui64,
        manufacturerCode: this.ram.manufacturerCode,
        endpoints: [...this.ram.endpoints.values()],
      });
      if (reply) {
        this.later(10, () => {
          const w = new ByteWriter().u8(0 /* EMBER_INCOMING_UNICAST */);
          this.writeApsFrame(w, reply.aps);
          // sl_zigbee_rx_packet_info_t: sender, its EUI64, binding and address index, LQI, RSSI, timestamp
          w.u16(self).eui64(this.ram.eui64).u8(0xff).u8(0xff).u8(0xff).i8(-10).u32(0);
          this.callback(FrameId.INCOMING_MESSAGE_HANDLER, w.payload(reply.payload).build());
        });
      }
    } else if (isUnicast) {
      sentCallback(SlStatus.ZIGBEE_DELIVERY_FAILED, 1500);
    } else {
      sentCallback(SlStatus.OK, type === EmberOutgoingMessageType.BROADCAST ? 50 : 20);
      if (type === EmberOutgoingMessageType.BROADCAST) this.maybeChangeChannel(aps, message);
    }
    return new ByteWriter().u32(SlStatus.OK).u8(this.ram.apsSequence).build();
  }

  /** Mgmt_NWK_Update_req with scan duration 0xFE: the network (the coordinator with it) moves. */
  private maybeChangeChannel(aps: ApsFrame, message: Buffer): void {
    if (aps.profileId !== 0 || aps.clusterId !== 0x0038 || message.length < 7 || message[5] !== 0xfe) return;
    const mask = message.readUInt32LE(1);
    const updateId = message[6]!;
    let channel = 0;
    for (let c = 11; c <= 26; c++) if (mask & (1 << c)) channel = channel || c;
    if (!channel) return;
    this.later(1000, () => {
      const n = this.tokens.network;
      if (!n || !this.ram.networkUp) return;
      n.channel = channel;
      n.nwkUpdateId = updateId;
      this.onStateChange();
      this.log.info(`channel changed to ${channel} (nwkUpdateId ${updateId})`);
      this.stackStatus(SlStatus.ZIGBEE_CHANNEL_CHANGED);
    });
  }
}

export interface ApsFrame {
  profileId: number;
  clusterId: number;
  sourceEndpoint: number;
  destinationEndpoint: number;
  options: number;
  groupId: number;
  sequence: number;
}
