/**
 * The host side of ASH and EZSP over any byte stream (a serial port, a TCP socket, a test pipe):
 * what a controller needs to talk to an EmberZNet NCP for a few commands, not a full stack host.
 *
 * ASH (UG101): CANCEL + RST and wait for RSTACK; DATA frames numbered mod 8 carrying EZSP; every
 * DATA frame from the NCP acknowledged with an ACK; a DATA frame out of sequence or damaged answered
 * with one NAK (the reject condition) so the NCP resends; our own DATA frames resent with the
 * retransmit flag when the NCP NAKs them or when no acknowledgement comes within the adaptive
 * timeout (herdsman's figures: 800 ms initial, 400–2400 ms, 6 consecutive timeouts and the link is
 * declared dead). Real UARTs lose and garble bytes, so this is not optional.
 *
 * EZSP (UG100): the legacy VERSION command first, then VERSION again in the extended frame format
 * at the version the NCP speaks; commands one at a time, matched to their response by sequence
 * number; INVALID_COMMAND answers turned into errors; callbacks (the asynchronous-callback bit)
 * collected in order so a caller can wait for one that may already have arrived.
 */
import {
  ASH_VERSION,
  AshByte,
  type AshDecoded,
  AshDecoder,
  type AshFrame,
  describeAshFrame,
  encodeAshFrame,
  ResetCode,
} from "./ash.js";
import {
  EZSP_MIN_PROTOCOL_VERSION,
  EZSP_PROTOCOL_VERSION,
  EzspStatus,
  FrameId,
  frameName,
  STACK_TYPE_MESH,
} from "./constants.js";
import { ByteReader, decodeEzspResponse, type EzspIncoming, encodeEzspCommand } from "./ezsp-frame.js";

/** The link to the NCP failed (no RSTACK, no acknowledgement, an ASH ERROR, an unexpected reset, closed). */
export class AshError extends Error {}

/** The NCP answered, but not with what the command needed (INVALID_COMMAND, wrong frame, truncated). */
export class EzspError extends Error {}

/** A wait ran out (a response, a callback, an RSTACK). */
export class EzspTimeoutError extends Error {}

export interface EzspHostOptions {
  /** Bytes for the NCP. */
  write: (bytes: Buffer) => void;
  /** Initial acknowledgement timeout; it adapts between the bounds below (UG101's filter). */
  ackTimeoutMs?: number;
  minAckTimeoutMs?: number;
  maxAckTimeoutMs?: number;
  /** Consecutive acknowledgement timeouts after which the link is declared dead. */
  maxAckTimeouts?: number;
  /** Default wait for an EZSP response (per command). */
  commandTimeoutMs?: number;
  /** One line per frame in both directions, for --trace. */
  trace?: (line: string) => void;
}

export interface NcpVersion {
  /** The EZSP protocol version both sides now speak. */
  ezspVersion: number;
  stackType: number;
  /** VERSION's 16-bit stack version: major, minor, patch, special in four nibbles. */
  stackVersion: number;
}

export interface EzspHostStats {
  /** DATA frames sent for the first time. */
  data_out: number;
  /** DATA frames sent again (NAK or acknowledgement timeout). */
  retransmitted: number;
  ack_timeouts: number;
  naks_in: number;
  naks_out: number;
  /** DATA frames from the NCP received twice (its retransmissions of frames we had). */
  duplicates_in: number;
  /** Frames the decoder threw away (bad CRC, UART error, too short or long, unknown control). */
  bad_frames_in: number;
  /** RSTACKs that were not the answer to our RST and were ignored while waiting for one. */
  ignored_rstacks: number;
}

interface PendingCommand {
  sequence: number;
  frameId: number;
  resolve: (parameters: Buffer) => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout;
}

interface CallbackWaiter {
  match: (frame: EzspIncoming) => boolean;
  resolve: (frame: EzspIncoming) => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout;
}

const inc = (n: number) => (n + 1) & 7;
/** true if n lies in lo..hi (mod 8), both inclusive. */
const within = (lo: number, n: number, hi: number) => ((n - lo) & 7) <= ((hi - lo) & 7);

const RESET_REASONS = new Map<number, string>(Object.entries(ResetCode).map(([name, code]) => [code, name]));
const EZSP_STATUS_NAMES = new Map<number, string>(
  Object.entries(EzspStatus).map(([name, code]) => [code, name]),
);

function resetReason(code: number): string {
  return `${RESET_REASONS.get(code) ?? "reason"} 0x${code.toString(16).padStart(2, "0")}`;
}

export class EzspHost {
  private readonly decoder = new AshDecoder();
  private readonly writeBytes: (bytes: Buffer) => void;
  private readonly trace: ((line: string) => void) | undefined;
  private readonly minAck: number;
  private readonly maxAck: number;
  private readonly maxTimeouts: number;
  private readonly commandTimeoutMs: number;

  private connected = false;
  private closedReason: string | undefined;
  /** Next frame number we send. */
  private frmTx = 0;
  /** Oldest of our frames the NCP has not acknowledged. */
  private ackRx = 0;
  /** Our unacknowledged DATA fields, in frame-number order from ackRx. */
  private unacked: Buffer[] = [];
  /** Next frame number expected from the NCP. */
  private frmRx = 0;
  /** A NAK went out for the frame we expect; no other until it arrives (UG101's reject condition). */
  private rejecting = false;
  private ackPeriod: number;
  private ackTimer: NodeJS.Timeout | undefined;
  private ackTimerStarted = 0;
  private timeouts = 0;

  private sequence = 0;
  private pending: PendingCommand | undefined;
  /** Commands run one at a time: each waits for the previous one to settle. */
  private queue: Promise<unknown> = Promise.resolve();
  private rstackWaiter: { resolve: (code: number) => void; reject: (error: Error) => void } | undefined;
  private callbackWaiters: CallbackWaiter[] = [];

  /** Every callback received since the last reset, in order. */
  callbacks: EzspIncoming[] = [];
  /** Negotiated by `negotiateVersion` (0 until then). */
  ezspVersion = 0;
  readonly stats: EzspHostStats = {
    data_out: 0,
    retransmitted: 0,
    ack_timeouts: 0,
    naks_in: 0,
    naks_out: 0,
    duplicates_in: 0,
    bad_frames_in: 0,
    ignored_rstacks: 0,
  };

  constructor(options: EzspHostOptions) {
    this.writeBytes = options.write;
    this.trace = options.trace;
    this.minAck = options.minAckTimeoutMs ?? 400;
    this.maxAck = options.maxAckTimeoutMs ?? 2400;
    this.ackPeriod = options.ackTimeoutMs ?? 800;
    this.maxTimeouts = options.maxAckTimeouts ?? 6;
    this.commandTimeoutMs = options.commandTimeoutMs ?? 5000;
  }

  /** Whether an RSTACK came and the link has not failed since. */
  get isConnected(): boolean {
    return this.connected;
  }

  // ------------------------------------------------------------------ bytes in

  /** Bytes from the NCP. */
  receive(chunk: Uint8Array): void {
    for (const decoded of this.decoder.push(chunk)) {
      if (decoded.kind === "frame") {
        this.trace?.(`<-- ${describeAshFrame(decoded.frame)}`);
        this.handle(decoded.frame);
      } else {
        this.onBadFrame(decoded);
      }
    }
  }

  private onBadFrame(decoded: Exclude<AshDecoded, { kind: "frame" }>): void {
    this.stats.bad_frames_in++;
    this.trace?.(`<-- (dropped: ${JSON.stringify(decoded)})`);
    // A damaged frame may have been the DATA frame we expect: ask for it again.
    const control = "control" in decoded ? decoded.control : undefined;
    const maybeData =
      decoded.kind === "comm-error" ||
      (decoded.kind === "bad-crc" && (control === undefined || control < 0x80));
    if (this.connected && maybeData) this.reject();
  }

  private handle(frame: AshFrame): void {
    switch (frame.kind) {
      case "rstack":
        this.onRstack(frame.version, frame.code);
        return;
      case "error":
        this.fail(
          new AshError(`the NCP reported an ASH ERROR (${resetReason(frame.code)}): it needs a reset`),
        );
        return;
      case "rst":
        return;
      default:
        break;
    }
    if (!this.connected) return;
    switch (frame.kind) {
      case "data":
        this.acknowledge(frame.ackNum);
        if (frame.frmNum === this.frmRx) {
          this.frmRx = inc(this.frmRx);
          this.rejecting = false;
          this.writeFrame({ kind: "ack", ackNum: this.frmRx, notReady: false });
          this.onEzspFrame(frame.data);
        } else if (frame.reTx) {
          // The NCP resends a frame we already have (our ACK was lost): acknowledge again.
          this.stats.duplicates_in++;
          this.writeFrame({ kind: "ack", ackNum: this.frmRx, notReady: false });
        } else {
          this.reject();
        }
        return;
      case "ack":
        this.acknowledge(frame.ackNum);
        return;
      case "nak":
        this.stats.naks_in++;
        this.acknowledge(frame.ackNum);
        this.retransmit();
        return;
    }
  }

  private onRstack(version: number, code: number): void {
    const waiter = this.rstackWaiter;
    // Only the answer to our RST counts (herdsman ignores the others too): a power-on or external
    // reset seen while we wait would be followed by the one we asked for.
    if (!waiter || code !== ResetCode.SOFTWARE) {
      if (waiter) {
        this.stats.ignored_rstacks++;
        return;
      }
      this.fail(new AshError(`the NCP reset itself (RSTACK, ${resetReason(code)})`));
      return;
    }
    this.rstackWaiter = undefined;
    if (version !== ASH_VERSION) {
      waiter.reject(new AshError(`the NCP speaks ASH version ${version}, not ${ASH_VERSION}`));
      return;
    }
    this.connected = true;
    waiter.resolve(code);
  }

  // ------------------------------------------------------------------ ASH: our DATA frames

  private writeFrame(frame: AshFrame, prefix?: Buffer): void {
    this.trace?.(`--> ${describeAshFrame(frame)}`);
    if (frame.kind === "nak") this.stats.naks_out++;
    const bytes = encodeAshFrame(frame);
    this.writeBytes(prefix ? Buffer.concat([prefix, bytes]) : bytes);
  }

  private sendData(data: Buffer): void {
    const frmNum = this.frmTx;
    this.unacked.push(data);
    this.frmTx = inc(this.frmTx);
    this.stats.data_out++;
    if (!this.ackTimer) this.startAckTimer();
    this.writeFrame({ kind: "data", frmNum, ackNum: this.frmRx, reTx: false, data });
  }

  /** Enter the reject condition: one NAK until the expected frame arrives. */
  private reject(): void {
    if (this.rejecting) return;
    this.rejecting = true;
    this.writeFrame({ kind: "nak", ackNum: this.frmRx, notReady: false });
  }

  /** The NCP has every frame of ours before ackNum. */
  private acknowledge(ackNum: number): void {
    if (!within(this.ackRx, ackNum, this.frmTx)) return;
    let progressed = false;
    while (this.ackRx !== ackNum) {
      this.unacked.shift();
      this.ackRx = inc(this.ackRx);
      progressed = true;
    }
    if (!progressed) return;
    this.timeouts = 0;
    if (this.ackTimerStarted) {
      // UG101: T = (7T + elapsed) / 8, bounded, so the timeout follows the line's real round trip.
      const elapsed = Date.now() - this.ackTimerStarted;
      this.ackPeriod = Math.min(this.maxAck, Math.max(this.minAck, (7 * this.ackPeriod + elapsed) / 8));
    }
    this.stopAckTimer();
    if (this.unacked.length > 0) this.startAckTimer();
  }

  /** Resend every unacknowledged frame, oldest first, with the retransmit flag. */
  private retransmit(): void {
    if (!this.connected || this.unacked.length === 0) return;
    this.stopAckTimer();
    this.startAckTimer();
    let frmNum = this.ackRx;
    for (const data of this.unacked) {
      this.stats.retransmitted++;
      this.writeFrame({ kind: "data", frmNum, ackNum: this.frmRx, reTx: true, data });
      frmNum = inc(frmNum);
    }
  }

  private startAckTimer(): void {
    this.ackTimerStarted = Date.now();
    this.ackTimer = setTimeout(() => this.onAckTimeout(), this.ackPeriod);
  }

  private stopAckTimer(): void {
    if (this.ackTimer) clearTimeout(this.ackTimer);
    this.ackTimer = undefined;
    this.ackTimerStarted = 0;
  }

  private onAckTimeout(): void {
    this.ackTimer = undefined;
    this.ackTimerStarted = 0;
    if (!this.connected || this.unacked.length === 0) return;
    this.stats.ack_timeouts++;
    this.ackPeriod = Math.min(this.maxAck, this.ackPeriod * 2);
    if (++this.timeouts >= this.maxTimeouts) {
      this.fail(
        new AshError(
          `the NCP acknowledged nothing after ${this.timeouts} retransmissions (wrong port, baud rate or flow control?)`,
        ),
      );
      return;
    }
    this.retransmit();
  }

  // ------------------------------------------------------------------ reset

  /**
   * CANCEL + RST, as herdsman starts, and wait for RSTACK (reason SOFTWARE). The chip reboots:
   * anything running (a network) stops until a host calls networkInit. Resolves with the reason.
   */
  reset(timeoutMs = 5000): Promise<number> {
    this.checkOpen();
    this.connected = false;
    this.failPending(new AshError("the NCP is being reset"));
    this.rstackWaiter?.reject(new AshError("a new reset was started"));
    this.stopAckTimer();
    this.frmTx = 0;
    this.ackRx = 0;
    this.frmRx = 0;
    this.unacked = [];
    this.rejecting = false;
    this.timeouts = 0;
    this.sequence = 0;
    this.ezspVersion = 0;
    this.callbacks = [];
    return new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.rstackWaiter = undefined;
        reject(new EzspTimeoutError(`no RSTACK within ${timeoutMs} ms after RST`));
      }, timeoutMs);
      this.rstackWaiter = {
        resolve: (code) => {
          clearTimeout(timer);
          resolve(code);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      };
      // CANCEL first: it makes the NCP drop any partial frame left on the line by a previous host.
      this.writeFrame({ kind: "rst" }, Buffer.from([AshByte.CANCEL]));
    });
  }

  // ------------------------------------------------------------------ EZSP

  /**
   * Send one command and resolve with its response's parameters. Commands are queued: each is sent
   * when the previous one has settled.
   */
  command(
    frameId: number,
    parameters: Buffer = Buffer.alloc(0),
    options: { legacy?: boolean; timeoutMs?: number } = {},
  ): Promise<Buffer> {
    const run = () => this.sendCommand(frameId, parameters, options);
    const result = this.queue.then(run, run);
    this.queue = result.catch(() => {});
    return result;
  }

  private sendCommand(
    frameId: number,
    parameters: Buffer,
    options: { legacy?: boolean; timeoutMs?: number },
  ): Promise<Buffer> {
    this.checkOpen();
    if (!this.connected) return Promise.reject(new AshError("not connected to the NCP (reset first)"));
    const sequence = this.sequence;
    this.sequence = (this.sequence + 1) & 0xff;
    const timeoutMs = options.timeoutMs ?? this.commandTimeoutMs;
    return new Promise<Buffer>((resolve, reject) => {
      const timer = setTimeout(() => {
        if (this.pending?.sequence === sequence) this.pending = undefined;
        reject(new EzspTimeoutError(`no response to ${frameName(frameId)} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending = {
        sequence,
        frameId,
        resolve: (p) => {
          clearTimeout(timer);
          resolve(p);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
        timer,
      };
      this.trace?.(`    EZSP ${frameName(frameId)} seq=${sequence} ${parameters.toString("hex")}`);
      this.sendData(encodeEzspCommand({ sequence, frameId, parameters, legacy: options.legacy }));
    });
  }

  private onEzspFrame(data: Buffer): void {
    let frame: EzspIncoming;
    try {
      frame = decodeEzspResponse(data);
    } catch (error) {
      this.trace?.(`    EZSP undecodable ${data.toString("hex")}: ${(error as Error).message}`);
      return;
    }
    this.trace?.(
      `    EZSP ${frameName(frame.frameId)} ${frame.callback ? "callback" : `response seq=${frame.sequence}`} ${frame.parameters.toString("hex")}`,
    );
    if (frame.callback) {
      this.callbacks.push(frame);
      const index = this.callbackWaiters.findIndex((w) => w.match(frame));
      if (index >= 0) {
        const [waiter] = this.callbackWaiters.splice(index, 1);
        clearTimeout(waiter!.timer);
        waiter!.resolve(frame);
      }
      return;
    }
    const pending = this.pending;
    // A late answer to a command that already timed out: nobody waits for it.
    if (!pending || pending.sequence !== frame.sequence) return;
    this.pending = undefined;
    if (frame.frameId === FrameId.INVALID_COMMAND) {
      const code = frame.parameters[0] ?? -1;
      pending.reject(
        new EzspError(
          `the NCP refused ${frameName(pending.frameId)}: ${EZSP_STATUS_NAMES.get(code) ?? "EzspStatus"} (0x${code.toString(16)})`,
        ),
      );
    } else if (frame.frameId !== pending.frameId) {
      pending.reject(
        new EzspError(`the NCP answered ${frameName(pending.frameId)} with ${frameName(frame.frameId)}`),
      );
    } else if (frame.truncated) {
      pending.reject(new EzspError(`the NCP truncated its response to ${frameName(pending.frameId)}`));
    } else {
      pending.resolve(frame.parameters);
    }
  }

  /**
   * Wait for a callback this host has not consumed yet: one among those received from index `since`
   * on counts (so a callback that overtook the command's response is not missed).
   */
  waitForCallback(
    match: (frame: EzspIncoming) => boolean,
    timeoutMs: number,
    since: number,
    what: string,
  ): Promise<EzspIncoming> {
    const seen = this.callbacks.slice(since).find(match);
    if (seen) return Promise.resolve(seen);
    this.checkOpen();
    return new Promise<EzspIncoming>((resolve, reject) => {
      const waiter: CallbackWaiter = {
        match,
        resolve,
        reject,
        timer: setTimeout(() => {
          this.callbackWaiters = this.callbackWaiters.filter((w) => w !== waiter);
          reject(new EzspTimeoutError(`no ${what} within ${timeoutMs} ms`));
        }, timeoutMs),
      };
      this.callbackWaiters.push(waiter);
    });
  }

  /**
   * RST, then VERSION as herdsman negotiates it: ask for the newest version in the legacy frame
   * format; the NCP answers with the version it speaks; if that differs, VERSION again at that
   * version in the extended format. Versions below 13 (EmberZNet < 7.4) or above what herdsman
   * knows are refused, as zigbee-herdsman's ember adapter refuses them.
   */
  async start(resetTimeoutMs = 5000, commandTimeoutMs = this.commandTimeoutMs): Promise<NcpVersion> {
    await this.reset(resetTimeoutMs);
    return this.negotiateVersion(commandTimeoutMs);
  }

  async negotiateVersion(timeoutMs = this.commandTimeoutMs): Promise<NcpVersion> {
    const first = parseVersion(
      await this.command(FrameId.VERSION, Buffer.from([EZSP_PROTOCOL_VERSION]), { legacy: true, timeoutMs }),
    );
    if (first.stackType !== STACK_TYPE_MESH)
      throw new EzspError(`the NCP runs stack type ${first.stackType}, not the Zigbee mesh stack (2)`);
    if (first.ezspVersion < EZSP_MIN_PROTOCOL_VERSION || first.ezspVersion > EZSP_PROTOCOL_VERSION)
      throw new EzspError(
        `the NCP speaks EZSP v${first.ezspVersion}; this tool (like zigbee-herdsman's ember adapter) supports v${EZSP_MIN_PROTOCOL_VERSION}–v${EZSP_PROTOCOL_VERSION} (EmberZNet 7.4 or newer)`,
      );
    let agreed = first;
    if (first.ezspVersion !== EZSP_PROTOCOL_VERSION) {
      agreed = parseVersion(
        await this.command(FrameId.VERSION, Buffer.from([first.ezspVersion]), { timeoutMs }),
      );
      if (agreed.ezspVersion !== first.ezspVersion)
        throw new EzspError(
          `the NCP offered EZSP v${first.ezspVersion} but then answered v${agreed.ezspVersion}`,
        );
    }
    this.ezspVersion = agreed.ezspVersion;
    return agreed;
  }

  // ------------------------------------------------------------------ failure and close

  private checkOpen(): void {
    if (this.closedReason !== undefined) throw new AshError(this.closedReason);
  }

  private failPending(error: Error): void {
    const pending = this.pending;
    this.pending = undefined;
    pending?.reject(error);
    for (const waiter of this.callbackWaiters.splice(0)) {
      clearTimeout(waiter.timer);
      waiter.reject(error);
    }
  }

  /** The link is unusable until the next reset: everything waiting fails with `error`. */
  fail(error: Error): void {
    this.connected = false;
    this.stopAckTimer();
    this.unacked = [];
    this.failPending(error);
  }

  /** The byte stream ended (port closed, socket reset): everything fails, nothing more is sent. */
  closed(reason: string): void {
    if (this.closedReason !== undefined) return;
    this.closedReason = reason;
    const error = new AshError(reason);
    this.fail(error);
    this.rstackWaiter?.reject(error);
    this.rstackWaiter = undefined;
  }

  /**
   * Make everything waiting fail now (a signal asked us to stop), but keep the stream: the caller
   * may still reset the NCP before it exits.
   */
  interrupt(reason: string): void {
    const error = new AshError(reason);
    this.fail(error);
    this.rstackWaiter?.reject(error);
    this.rstackWaiter = undefined;
  }

  /** Stop timers and fail what still waits; the caller closes the stream. */
  close(): void {
    this.closed("the host closed the connection");
  }
}

function parseVersion(parameters: Buffer): NcpVersion {
  const r = new ByteReader(parameters);
  return { ezspVersion: r.u8(), stackType: r.u8(), stackVersion: r.u16() };
}
