/**
 * The NCP's side of ASH (UG101 §3–4): RST/RSTACK, DATA frame numbering with piggy-backed
 * acknowledgements, ACK/NAK, the reject condition for out-of-sequence frames, retransmission on NAK
 * or acknowledgement timeout, the host's not-ready flag, and the FAILED state after too many
 * timeouts. It knows nothing about EZSP: it hands DATA fields up and sends the ones it is given.
 *
 * Time comes from an injected clock (the real one in the simulator, a manual one in unit tests).
 */

import {
  ASH_VERSION,
  AshByte,
  type AshDecoded,
  AshDecoder,
  type AshFrame,
  encodeAshFrame,
  ResetCode,
} from "../../../sidecar/coordinator/ember/ash.js";
import type { Clock } from "../simulator/link.js";

export interface AshNcpEvents {
  /** Wire bytes for the host. */
  write(bytes: Buffer): void;
  /** The host sent RST: the chip resets (the device answers with `sendRstack` once it has rebooted). */
  onReset(): void;
  /** An in-sequence DATA field (an EZSP frame), delivered once. */
  onData(data: Buffer): void;
  /** Every frame in both directions, and what the decoder threw away (for the trace and stats). */
  onTrace?(direction: "in" | "out", what: AshFrame | AshDecoded): void;
}

export interface AshNcpStats {
  frames_in: number;
  frames_out: number;
  data_in: number;
  data_out: number;
  retransmitted: number;
  duplicates_in: number;
  out_of_sequence_in: number;
  naks_in: number;
  naks_out: number;
  bad_frames_in: number;
  ack_timeouts: number;
}

/** Frames the NCP may send before an acknowledgement (ASH's window; 3 bits of frame number allow 7). */
const TX_WINDOW = 5;
/** UG101: initial acknowledgement timeout, its bounds, and consecutive timeouts before FAILED. */
const ACK_TIME_INIT_MS = 800;
const ACK_TIME_MIN_MS = 400;
const ACK_TIME_MAX_MS = 2400;
const MAX_TIMEOUTS = 4;
/** How long the host's not-ready flag holds callbacks back unless refreshed. */
const NOT_READY_MS = 480;

const inc = (n: number) => (n + 1) & 7;
/** true if n lies in lo..hi (mod 8), both inclusive. */
const within = (lo: number, n: number, hi: number) => ((n - lo) & 7) <= ((hi - lo) & 7);

interface Outgoing {
  data: Buffer;
  /** Callbacks wait while the host is not ready; responses do not. */
  callback: boolean;
}

export class AshNcp {
  private readonly decoder = new AshDecoder();
  /** Next frame number the NCP sends. */
  private frmTx = 0;
  /** Oldest frame the host has not acknowledged yet. */
  private ackRx = 0;
  /** Next frame number expected from the host. */
  private frmRx = 0;
  /** The last ackNum sent to the host. */
  private ackTx = 0;
  /** Sent, not yet acknowledged, in frame-number order from ackRx. */
  private unacked: Buffer[] = [];
  private readonly queue: Outgoing[] = [];
  private rejecting = false;
  private notReadyUntil = 0;
  private ackPeriod = ACK_TIME_INIT_MS;
  private ackTimerStarted = 0;
  private cancelAckTimer: (() => void) | undefined;
  private timeouts = 0;
  private failed = false;
  private flushScheduled = false;
  private cancelNotReadyTimer: (() => void) | undefined;
  readonly stats: AshNcpStats = {
    frames_in: 0,
    frames_out: 0,
    data_in: 0,
    data_out: 0,
    retransmitted: 0,
    duplicates_in: 0,
    out_of_sequence_in: 0,
    naks_in: 0,
    naks_out: 0,
    bad_frames_in: 0,
    ack_timeouts: 0,
  };

  constructor(
    private readonly events: AshNcpEvents,
    private readonly clock: Clock,
  ) {}

  /** Whether the NCP gave up on the host (too many acknowledgement timeouts) until the next RST. */
  get isFailed(): boolean {
    return this.failed;
  }

  /** Bytes from the host. */
  receive(chunk: Uint8Array): void {
    for (const decoded of this.decoder.push(chunk)) {
      if (decoded.kind !== "frame") {
        this.stats.bad_frames_in++;
        this.events.onTrace?.("in", decoded);
        // A damaged frame might have been the DATA frame we expect: ask for it again (once).
        if (decoded.kind === "bad-crc" && decoded.control !== undefined && (decoded.control & 0x80) === 0)
          this.reject();
        continue;
      }
      this.stats.frames_in++;
      this.events.onTrace?.("in", decoded.frame);
      this.handle(decoded.frame);
    }
  }

  /** Queue an EZSP frame (a response or a callback) for the host. */
  send(data: Buffer, callback = false): void {
    this.queue.push({ data: Buffer.from(data), callback });
    this.scheduleFlush();
  }

  /**
   * The chip rebooted (RST, power-on, software reset): ASH starts from scratch. With `rstack`, it
   * announces itself as the real NCP does: a CANCEL byte, then RSTACK(version 2, reason).
   */
  reset(rstackCode?: number): void {
    this.frmTx = 0;
    this.ackRx = 0;
    this.frmRx = 0;
    this.ackTx = 0;
    this.unacked = [];
    this.queue.length = 0;
    this.rejecting = false;
    this.notReadyUntil = 0;
    this.ackPeriod = ACK_TIME_INIT_MS;
    this.timeouts = 0;
    this.failed = false;
    this.stopAckTimer();
    this.stopNotReadyTimer();
    if (rstackCode !== undefined) this.sendRstack(rstackCode);
  }

  sendRstack(code: number): void {
    const frame: AshFrame = { kind: "rstack", version: ASH_VERSION, code };
    this.events.onTrace?.("out", frame);
    this.stats.frames_out++;
    this.events.write(Buffer.concat([Buffer.from([AshByte.CANCEL]), encodeAshFrame(frame)]));
  }

  /** Stop timers (power off, process exit). */
  dispose(): void {
    this.stopAckTimer();
    this.stopNotReadyTimer();
    this.queue.length = 0;
    this.unacked = [];
  }

  private handle(frame: AshFrame): void {
    if (frame.kind === "rst") {
      this.events.onReset();
      return;
    }
    if (this.failed) {
      // UG101: in the FAILED state the NCP answers everything but RST with ERROR.
      this.writeFrame({
        kind: "error",
        version: ASH_VERSION,
        code: ResetCode.EXCEEDED_MAXIMUM_ACK_TIMEOUT_COUNT,
      });
      return;
    }
    switch (frame.kind) {
      case "data": {
        this.acknowledge(frame.ackNum);
        if (frame.frmNum === this.frmRx) {
          this.frmRx = inc(this.frmRx);
          this.rejecting = false;
          this.stats.data_in++;
          this.events.onData(frame.data);
          this.scheduleFlush();
        } else if (frame.reTx) {
          // A retransmission of a frame we already have: acknowledge again, do not deliver twice.
          this.stats.duplicates_in++;
          this.writeFrame({ kind: "ack", ackNum: this.frmRx, notReady: false });
        } else {
          this.stats.out_of_sequence_in++;
          this.reject();
        }
        break;
      }
      case "ack":
        this.noteReady(frame.notReady);
        this.acknowledge(frame.ackNum);
        this.scheduleFlush();
        break;
      case "nak":
        this.stats.naks_in++;
        this.noteReady(frame.notReady);
        this.acknowledge(frame.ackNum);
        this.retransmit();
        break;
      case "rstack":
      case "error":
        // Frames only an NCP sends: a confused host; ignore as the NCP firmware does.
        break;
    }
  }

  private noteReady(notReady: boolean): void {
    this.notReadyUntil = notReady ? this.clock.now() + NOT_READY_MS : 0;
  }

  /** Enter the reject condition (one NAK until an in-sequence frame arrives). */
  private reject(): void {
    if (this.rejecting) return;
    this.rejecting = true;
    this.stats.naks_out++;
    this.writeFrame({ kind: "nak", ackNum: this.frmRx, notReady: false });
  }

  /** The host acknowledged every frame before ackNum. */
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
      // UG101's filter: T = (7T + elapsed)/8, bounded.
      const elapsed = this.clock.now() - this.ackTimerStarted;
      this.ackPeriod = Math.min(
        ACK_TIME_MAX_MS,
        Math.max(ACK_TIME_MIN_MS, (7 * this.ackPeriod + elapsed) / 8),
      );
    }
    this.stopAckTimer();
    if (this.unacked.length > 0) this.startAckTimer();
  }

  /** Resend every unacknowledged frame, oldest first, with the retransmit flag. */
  private retransmit(): void {
    let frmNum = this.ackRx;
    const frames = [...this.unacked];
    this.ackTx = this.frmRx;
    this.stopAckTimer();
    if (frames.length > 0) this.startAckTimer();
    for (const data of frames) {
      this.stats.retransmitted++;
      this.writeFrame({ kind: "data", frmNum, ackNum: this.frmRx, reTx: true, data });
      frmNum = inc(frmNum);
    }
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    // Let the handler of the frame just received queue its response first, so it carries the ACK.
    queueMicrotask(() => {
      this.flushScheduled = false;
      this.flush();
    });
  }

  private flush(): void {
    if (this.failed) return;
    const hostNotReady = this.clock.now() < this.notReadyUntil;
    while (this.queue.length > 0 && this.unacked.length < TX_WINDOW) {
      const index = hostNotReady ? this.queue.findIndex((o) => !o.callback) : 0;
      if (index < 0) break;
      const [next] = this.queue.splice(index, 1);
      const data = next!.data;
      const frmNum = this.frmTx;
      // State first: writing may deliver the host's ACK for this very frame before it returns.
      this.stats.data_out++;
      this.unacked.push(data);
      this.frmTx = inc(this.frmTx);
      this.ackTx = this.frmRx;
      if (!this.ackTimerStarted) this.startAckTimer();
      this.writeFrame({ kind: "data", frmNum, ackNum: this.frmRx, reTx: false, data });
    }
    // Nothing carried the acknowledgement of what we received: send a bare ACK.
    if (this.ackTx !== this.frmRx) {
      this.ackTx = this.frmRx;
      this.writeFrame({ kind: "ack", ackNum: this.frmRx, notReady: false });
    }
    if (hostNotReady && this.queue.length > 0 && !this.cancelNotReadyTimer) {
      this.cancelNotReadyTimer = this.clock.timer(this.notReadyUntil - this.clock.now(), () => {
        this.cancelNotReadyTimer = undefined;
        this.scheduleFlush();
      });
    }
  }

  private writeFrame(frame: AshFrame): void {
    this.stats.frames_out++;
    this.events.onTrace?.("out", frame);
    this.events.write(encodeAshFrame(frame));
  }

  private startAckTimer(): void {
    this.stopAckTimer();
    this.ackTimerStarted = this.clock.now();
    this.cancelAckTimer = this.clock.timer(this.ackPeriod, () => this.onAckTimeout());
  }

  private stopNotReadyTimer(): void {
    this.cancelNotReadyTimer?.();
    this.cancelNotReadyTimer = undefined;
  }

  private stopAckTimer(): void {
    this.cancelAckTimer?.();
    this.cancelAckTimer = undefined;
    this.ackTimerStarted = 0;
  }

  private onAckTimeout(): void {
    this.cancelAckTimer = undefined;
    this.ackTimerStarted = 0;
    if (this.unacked.length === 0) return;
    this.stats.ack_timeouts++;
    this.ackPeriod = Math.min(ACK_TIME_MAX_MS, this.ackPeriod * 2);
    if (++this.timeouts >= MAX_TIMEOUTS) {
      // The host is gone or deaf: UG101's FAILED state, left only by RST.
      this.failed = true;
      this.queue.length = 0;
      this.unacked = [];
      this.writeFrame({
        kind: "error",
        version: ASH_VERSION,
        code: ResetCode.EXCEEDED_MAXIMUM_ACK_TIMEOUT_COUNT,
      });
      return;
    }
    this.retransmit();
  }
}
