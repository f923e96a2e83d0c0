/**
 * The serial line between a host and the NCP, with time: the Z-Stack simulator's model
 * (../simulator/link.ts: 115200 baud 8N1, bytes back to back per direction, a per-request chip
 * latency, extra time for flash writes, an injected clock) applied to ASH instead of MT.
 *
 * What differs is what counts as a request: ASH frames end with a flag byte. A DATA frame (an EZSP
 * command) or an RST is handed to the chip `requestLatencyMs` after its flag arrived, one at a time
 * in order, plus `nvWriteMs` for EZSP commands that write NVM3 tokens or the manufacturing token
 * and `nvDeleteMs` for the factory reset of the tokens. ACK and NAK frames and stray bytes are
 * handled by the NCP's UART driver as they arrive: line time only, outside the chip's queue.
 */

import {
  ASH_FLIP,
  ASH_MIN_DATA,
  AshByte,
  AshControl,
  randomize,
} from "../../../sidecar/coordinator/ember/ash.js";
import { FrameId } from "../../../sidecar/coordinator/ember/constants.js";
import {
  byteTimeMs,
  type Clock,
  type LinkEnds,
  type LinkProfile,
  type LinkStats,
  realClock,
} from "../simulator/link.js";

/** EZSP commands whose handling programs flash (NVM3 or the USERDATA page). */
const TOKEN_WRITES: ReadonlySet<number> = new Set([
  FrameId.FORM_NETWORK,
  FrameId.LEAVE_NETWORK,
  FrameId.SET_INITIAL_SECURITY_STATE,
  FrameId.SET_MFG_TOKEN,
  FrameId.IMPORT_LINK_KEY,
  FrameId.ERASE_KEY_TABLE_ENTRY,
  FrameId.CLEAR_KEY_TABLE,
]);
const TOKEN_ERASES: ReadonlySet<number> = new Set([FrameId.TOKEN_FACTORY_RESET]);

/**
 * What a chunk of wire bytes ending at a flag is, without the decoder's state: the serial-line model
 * uses it to decide how long the chip works on it. `ezspFrameId` is set for DATA frames that carry
 * an extended EZSP header (the legacy VERSION command has frame id 0 in byte 2).
 */
export function classifyAshChunk(
  chunk: Uint8Array,
): { kind: "data"; ezspFrameId: number } | { kind: "rst" } | { kind: "other" } {
  // Only the part after the last CANCEL belongs to the frame this flag ends.
  let start = 0;
  for (let i = 0; i < chunk.length; i++) if (chunk[i] === AshByte.CANCEL) start = i + 1;
  const bytes: number[] = [];
  let escaped = false;
  for (let i = start; i < chunk.length; i++) {
    const byte = chunk[i]!;
    if (byte === AshByte.FLAG) break;
    if (byte === AshByte.ESCAPE) {
      escaped = true;
      continue;
    }
    if (byte === AshByte.XON || byte === AshByte.XOFF || byte === AshByte.SUBSTITUTE) continue;
    if (byte === AshByte.WAKE && bytes.length === 0 && !escaped) continue;
    bytes.push(escaped ? byte ^ ASH_FLIP : byte);
    escaped = false;
  }
  const control = bytes[0];
  if (control === undefined) return { kind: "other" };
  if (control === AshControl.RST) return { kind: "rst" };
  if ((control & 0x80) !== 0 || bytes.length < 1 + ASH_MIN_DATA + 2) return { kind: "other" };
  const data = randomize(Buffer.from(bytes.slice(1, Math.min(bytes.length - 2, 6))));
  const legacy = data.length < 5 || (data[2]! & 0x03) !== 0x01;
  return { kind: "data", ezspFrameId: legacy ? (data[2] ?? 0) : data[3]! | (data[4]! << 8) };
}

/** How long the NCP works on an ASH frame from the host; undefined: not a request (ACK, NAK, noise). */
export function ashProcessingMs(chunk: Uint8Array, profile: LinkProfile): number | undefined {
  const kind = classifyAshChunk(chunk);
  if (kind.kind === "rst") return profile.requestLatencyMs;
  if (kind.kind !== "data") return undefined;
  let ms = profile.requestLatencyMs;
  if (TOKEN_WRITES.has(kind.ezspFrameId)) ms += profile.nvWriteMs;
  if (TOKEN_ERASES.has(kind.ezspFrameId)) ms += profile.nvDeleteMs;
  return ms;
}

interface Scheduled {
  at: number;
  seq: number;
  run: () => void;
}

/** One host session on a timed serial line. Same interface and event model as ../simulator/link.ts. */
export class AshSerialLink {
  private readonly byteMs: number;
  private inFree = Number.NEGATIVE_INFINITY;
  private chipFree = Number.NEGATIVE_INFINITY;
  private outFree = Number.NEGATIVE_INFINITY;
  private pending: Buffer = Buffer.alloc(0);
  private pendingArrivals: number[] = [];
  private readonly queue: Scheduled[] = [];
  private seq = 0;
  private cancelTimer: (() => void) | undefined;
  private armedFor: number | undefined;
  private eventTime: number | undefined;
  private hostGone = false;
  private aborted = false;

  constructor(
    readonly profile: LinkProfile,
    private readonly ends: LinkEnds,
    private readonly clock: Clock = realClock,
    private readonly stats?: LinkStats,
  ) {
    this.byteMs = byteTimeMs(profile);
    if (stats) stats.sessions++;
  }

  fromHost(chunk: Buffer): void {
    if (this.aborted || chunk.length === 0) return;
    const start = Math.max(this.time(), this.inFree);
    for (let i = 0; i < chunk.length; i++) this.pendingArrivals.push(start + (i + 1) * this.byteMs);
    this.inFree = start + chunk.length * this.byteMs;
    this.pending = this.pending.length === 0 ? Buffer.from(chunk) : Buffer.concat([this.pending, chunk]);
    this.segment();
  }

  fromDevice(chunk: Buffer): void {
    if (this.aborted || this.hostGone || chunk.length === 0) return;
    const start = Math.max(this.time(), this.outFree);
    const end = start + chunk.length * this.byteMs;
    this.outFree = end;
    const data = Buffer.from(chunk);
    this.schedule(end, () => {
      if (!this.hostGone) this.ends.toHost(data);
    });
  }

  /** The host closed the port: what it wrote still reaches the chip; `then` runs after the last of it. */
  drain(then: () => void): void {
    if (this.aborted) {
      then();
      return;
    }
    this.hostGone = true;
    if (this.pending.length > 0) this.take(this.pending.length);
    this.schedule(Math.max(this.chipFree, this.time()), then);
  }

  abort(): void {
    this.aborted = true;
    this.queue.length = 0;
    this.cancelTimer?.();
    this.cancelTimer = undefined;
    this.armedFor = undefined;
  }

  private time(): number {
    return this.eventTime ?? this.clock.now();
  }

  /** Cut what arrived at each flag: one ASH frame (or noise) per piece. */
  private segment(): void {
    for (;;) {
      const flag = this.pending.indexOf(AshByte.FLAG);
      if (flag < 0) return;
      this.take(flag + 1);
    }
  }

  private take(n: number): void {
    const bytes = Buffer.from(this.pending.subarray(0, n));
    const arrival = this.pendingArrivals[n - 1]!;
    this.pending = this.pending.subarray(n);
    this.pendingArrivals = this.pendingArrivals.slice(n);
    const processing = ashProcessingMs(bytes, this.profile);
    if (processing === undefined) {
      this.schedule(arrival, () => this.ends.toDevice(bytes));
      return;
    }
    const done = Math.max(arrival, this.chipFree) + processing;
    this.chipFree = done;
    this.schedule(done, () => this.ends.toDevice(bytes));
  }

  private schedule(at: number, run: () => void): void {
    const event = { at, seq: this.seq++, run };
    let i = this.queue.length;
    while (i > 0 && this.queue[i - 1]!.at > at) i--;
    this.queue.splice(i, 0, event);
    this.arm();
  }

  private arm(): void {
    const head = this.queue[0];
    if (!head || this.aborted) return;
    if (this.armedFor !== undefined && this.armedFor <= head.at) return;
    this.cancelTimer?.();
    this.armedFor = head.at;
    this.cancelTimer = this.clock.timer(head.at - this.clock.now() - (this.clock.earlyMs ?? 0), () => {
      this.cancelTimer = undefined;
      this.armedFor = undefined;
      this.runDue();
    });
  }

  private runDue(): void {
    const now = this.clock.now();
    const horizon = now + (this.clock.earlyMs ?? 0);
    while (!this.aborted && this.queue.length > 0 && this.queue[0]!.at <= horizon) {
      const event = this.queue.shift()!;
      this.stats?.note(now - event.at);
      this.eventTime = event.at;
      try {
        event.run();
      } finally {
        this.eventTime = undefined;
      }
    }
    this.arm();
  }
}
