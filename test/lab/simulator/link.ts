/**
 * The serial line between a host and the chip, with time. A real ZBDongle-P is a CC2652P behind a
 * USB-UART bridge at 115200 baud 8N1: every byte costs 10 bit times on the wire (start, 8 data,
 * stop) in each direction, and the chip takes a while to answer each request, longer when it
 * programs or erases flash. The rest of the simulator answers at once; this module holds every byte
 * until the model says it has crossed the line. Calibration and sources: docs/simulator.md.
 *
 * The model, per host session:
 * - host → chip: the bytes of a write occupy the line back to back from max(now, line free);
 *   byte k arrives k+1 byte times after its start;
 * - the chip handles what arrived in order, one request at a time: a request (a complete MT frame)
 *   is handed to the device at max(its last byte's arrival, the chip free) + its processing time
 *   (`requestLatencyMs`, plus `nvWriteMs`/`nvDeleteMs` for NV commands that program or erase
 *   flash); bytes outside frames (zigpy-znp's 0xEF bootloader skip) cost line time only;
 * - chip → host: what the device sends occupies the other direction from max(the time it was
 *   produced, line free) and reaches the host when its last byte has crossed.
 * Every time is computed from the event that caused it (a late timer delays a delivery, not the
 * schedule), and the clock is injected, so the schedule is exact and testable without waiting.
 * Only what makes a request depends on the protocol (LineFraming): the EmberZNet simulator runs
 * this same line with its ASH framing.
 */
import { MAX_PAYLOAD, MtType, SOF, Subsystem } from "./frame.js";

export type LinkMode = "instant" | "realistic";

export const LINK_MODES: readonly LinkMode[] = ["instant", "realistic"];

export interface LinkProfile {
  /** UART speed, bits per second. */
  baud: number;
  /** Bits on the wire per byte: 10 for 8N1 (start bit, 8 data bits, stop bit). */
  bitsPerByte: number;
  /** From a request's last byte to the first byte of the reply (or to the chip acting on an AREQ). */
  requestLatencyMs: number;
  /** Added for NV commands that program flash (write, write ext, item init, create, update, setExtAddr). */
  nvWriteMs: number;
  /** Added for NV commands that erase (osalNvDelete, nvDelete). */
  nvDeleteMs: number;
}

/** A CC2652P coordinator on USB at 115200 baud 8N1 (docs/simulator.md, "The serial link"). */
export const REALISTIC_LINK: Readonly<LinkProfile> = Object.freeze({
  baud: 115_200,
  bitsPerByte: 10,
  requestLatencyMs: 11,
  nvWriteMs: 4,
  nvDeleteMs: 15,
});

/** Milliseconds one byte occupies the line. */
export function byteTimeMs(profile: LinkProfile): number {
  return (profile.bitsPerByte * 1000) / profile.baud;
}

/** Milliseconds `bytes` bytes occupy the line, back to back. */
export function wireTimeMs(bytes: number, profile: LinkProfile): number {
  return bytes * byteTimeMs(profile);
}

/** SYS commands that program flash (TI mt_sys.c): setExtAddr writes EXTADDR to NV. */
const SYS_NV_WRITES: ReadonlySet<number> = new Set([0x03, 0x07, 0x09, 0x1d, 0x30, 0x34, 0x35]);
/** SYS commands that erase NV items. */
const SYS_NV_DELETES: ReadonlySet<number> = new Set([0x12, 0x31]);

/** How long the chip works on a frame from the host with this CMD0/CMD1 before it answers. */
export function processingMs(cmd0: number, cmd1: number, profile: LinkProfile): number {
  const type = (cmd0 >> 5) & 0x07;
  const subsystem = cmd0 & 0x1f;
  let ms = profile.requestLatencyMs;
  if (type === MtType.SREQ && subsystem === Subsystem.SYS) {
    if (SYS_NV_WRITES.has(cmd1)) ms += profile.nvWriteMs;
    if (SYS_NV_DELETES.has(cmd1)) ms += profile.nvDeleteMs;
  }
  return ms;
}

/** Checks a profile a user gave (CLI, control socket): a clear error instead of a line that never delivers. */
export function checkProfile(profile: LinkProfile): LinkProfile {
  const finite = (name: string, value: number, min: number, max: number) => {
    if (!Number.isFinite(value) || value < min || value > max)
      throw new RangeError(`${name} must be a number from ${min} to ${max}, not ${value}`);
  };
  finite("baud", profile.baud, 300, 10_000_000);
  finite("bits per byte", profile.bitsPerByte, 7, 12);
  finite("latency ms", profile.requestLatencyMs, 0, 10_000);
  finite("NV write ms", profile.nvWriteMs, 0, 10_000);
  finite("NV delete ms", profile.nvDeleteMs, 0, 10_000);
  return profile;
}

/** Time source and timers; the real one in the simulator, a manual one in tests. */
export interface Clock {
  /** Milliseconds, monotonic. */
  now(): number;
  /** Runs `fn` once, about `delayMs` from now; returns a cancel function. */
  timer(delayMs: number, fn: () => void): () => void;
  /**
   * How much earlier than its computed time an event may run. Node's timers have 1 ms granularity
   * and fire a little late; running what is due within this margin at once keeps the mean error of
   * deliveries near zero instead of adding a millisecond or two to every request.
   */
  readonly earlyMs?: number;
}

export const realClock: Clock = {
  now: () => performance.now(),
  timer: (delayMs, fn) => {
    const handle = setTimeout(fn, Math.max(0, Math.floor(delayMs)));
    return () => clearTimeout(handle);
  },
  // Measured with zigpy-znp's nvram_read (2 × 2500 deliveries): 0 gave a mean error of +0.87 ms,
  // 0.5 of +0.34 ms, 1 of −0.34 ms, 0.75 of +0.03 ms.
  earlyMs: 0.75,
};

/** A clock that moves only when told to: timers run in time order as `advance` passes them. */
export class ManualClock implements Clock {
  private current = 0;
  private seq = 0;
  private readonly pending: { at: number; seq: number; fn: () => void }[] = [];

  now(): number {
    return this.current;
  }

  timer(delayMs: number, fn: () => void): () => void {
    const entry = { at: this.current + Math.max(0, delayMs), seq: this.seq++, fn };
    this.pending.push(entry);
    return () => {
      const i = this.pending.indexOf(entry);
      if (i >= 0) this.pending.splice(i, 1);
    };
  }

  /** Moves time forward by `ms`, running every timer that falls due on the way, at its time. */
  advance(ms: number): void {
    const target = this.current + ms;
    for (;;) {
      const next = this.nextDue(target);
      if (!next) break;
      this.pending.splice(this.pending.indexOf(next), 1);
      this.current = Math.max(this.current, next.at);
      next.fn();
    }
    this.current = target;
  }

  /** Runs timers until none is left (bounded, in case something keeps re-arming). */
  runAll(limit = 100_000): void {
    for (let i = 0; i < limit && this.pending.length > 0; i++) {
      const next = this.nextDue(Number.POSITIVE_INFINITY)!;
      this.advance(next.at - this.current);
    }
  }

  private nextDue(limit: number) {
    let best: (typeof this.pending)[number] | undefined;
    for (const p of this.pending)
      if (p.at <= limit && (!best || p.at < best.at || (p.at === best.at && p.seq < best.seq))) best = p;
    return best;
  }
}

/** Where a link delivers: the device's receive, the host's socket. */
export interface LinkEnds {
  toDevice(bytes: Buffer): void;
  toHost(bytes: Buffer): void;
}

/** How far deliveries were off the computed schedule (timer granularity, load; negative: early), for `stats`. */
export class LinkStats {
  sessions = 0;
  deliveries = 0;
  private totalLatenessMs = 0;
  maxLatenessMs = 0;

  note(latenessMs: number): void {
    this.deliveries++;
    this.totalLatenessMs += latenessMs;
    if (latenessMs > this.maxLatenessMs) this.maxLatenessMs = latenessMs;
  }

  toJSON() {
    return {
      sessions: this.sessions,
      deliveries: this.deliveries,
      mean_lateness_ms: this.deliveries ? round3(this.totalLatenessMs / this.deliveries) : 0,
      max_lateness_ms: round3(this.maxLatenessMs),
    };
  }
}

/** LinkStats as the control socket reports them. */
export type LinkStatsReport = ReturnType<LinkStats["toJSON"]>;

const round3 = (n: number) => Math.round(n * 1000) / 1000;

/**
 * How the chip cuts the host's bytes into what it acts on, and what each piece costs it: the only
 * part of the line model that depends on the protocol.
 */
export interface LineFraming {
  /** Length of the whole piece (a frame, or bytes outside frames) at the head of `pending`; 0 while it is still arriving. */
  pieceLength(pending: Buffer): number;
  /**
   * The chip's time for a piece, also for the incomplete rest when the host closes the port;
   * undefined: the UART takes it as it arrives, outside the chip's queue of requests.
   */
  chipMs(piece: Buffer, profile: LinkProfile): number | undefined;
}

/** MT as the chip's parser sees it; bytes outside frames still wait their turn behind requests. */
export const MT_FRAMING: LineFraming = {
  pieceLength(p) {
    if (p[0] !== SOF) {
      const next = p.indexOf(SOF);
      return next < 0 ? p.length : next;
    }
    if (p.length < 2) return 0;
    const len = p[1]!;
    if (len > MAX_PAYLOAD) return 1;
    return p.length < len + 5 ? 0 : len + 5;
  },
  chipMs(piece, profile) {
    const whole = piece[0] === SOF && piece.length >= 5 && piece.length === piece[1]! + 5;
    return whole ? processingMs(piece[2]!, piece[3]!, profile) : 0;
  },
};

interface Scheduled {
  at: number;
  seq: number;
  run: () => void;
}

/** One host session on a timed serial line (see the module comment for the model). */
export class SerialLink {
  private readonly byteMs: number;
  private inFree = Number.NEGATIVE_INFINITY;
  private chipFree = Number.NEGATIVE_INFINITY;
  private outFree = Number.NEGATIVE_INFINITY;
  /** Bytes that arrived (or are arriving) but do not yet make up a whole piece, with each byte's arrival. */
  private pending: Buffer = Buffer.alloc(0);
  private pendingArrivals: number[] = [];
  private readonly queue: Scheduled[] = [];
  private seq = 0;
  private cancelTimer: (() => void) | undefined;
  private armedFor: number | undefined;
  /** Set while an event runs: what it causes is scheduled from its computed time, not from a late timer. */
  private eventTime: number | undefined;
  private hostGone = false;
  private aborted = false;

  constructor(
    readonly profile: LinkProfile,
    private readonly ends: LinkEnds,
    private readonly clock: Clock = realClock,
    private readonly stats?: LinkStats,
    private readonly framing: LineFraming = MT_FRAMING,
  ) {
    this.byteMs = byteTimeMs(profile);
    if (stats) stats.sessions++;
  }

  /** Bytes the host wrote to the port. */
  fromHost(chunk: Buffer): void {
    if (this.aborted || chunk.length === 0) return;
    const start = Math.max(this.time(), this.inFree);
    for (let i = 0; i < chunk.length; i++) this.pendingArrivals.push(start + (i + 1) * this.byteMs);
    this.inFree = start + chunk.length * this.byteMs;
    this.pending = this.pending.length === 0 ? Buffer.from(chunk) : Buffer.concat([this.pending, chunk]);
    for (;;) {
      const n = this.pending.length === 0 ? 0 : this.framing.pieceLength(this.pending);
      if (n === 0) return;
      this.take(n);
    }
  }

  /** Bytes the device sends to the host. */
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

  /**
   * The host closed the port. What it wrote is already on the wire and still reaches the chip
   * (a closing serial port drains its transmit buffer); replies go nowhere. `then` runs once the
   * chip has taken the last of it.
   */
  drain(then: () => void): void {
    if (this.aborted) {
      then();
      return;
    }
    this.hostGone = true;
    if (this.pending.length > 0) this.take(this.pending.length);
    this.schedule(Math.max(this.chipFree, this.time()), then);
  }

  /** The line is gone (unplug, power off): nothing in flight arrives anywhere. */
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

  private take(n: number): void {
    const bytes = Buffer.from(this.pending.subarray(0, n));
    const arrival = this.pendingArrivals[n - 1]!;
    this.pending = this.pending.subarray(n);
    this.pendingArrivals = this.pendingArrivals.slice(n);
    const chipMs = this.framing.chipMs(bytes, this.profile);
    if (chipMs === undefined) {
      this.schedule(arrival, () => this.ends.toDevice(bytes));
      return;
    }
    const done = Math.max(arrival, this.chipFree) + chipMs;
    this.chipFree = done;
    this.schedule(done, () => this.ends.toDevice(bytes));
  }

  private schedule(at: number, run: () => void): void {
    const event = { at, seq: this.seq++, run };
    // Events come mostly in time order: insert from the back.
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

/** What a user asks for: a mode, and for the timed one optional changes to the default profile. */
export interface LinkSettings {
  mode: LinkMode;
  baud?: number;
  latencyMs?: number;
  nvWriteMs?: number;
  nvDeleteMs?: number;
}

/** The profile for these settings (undefined: instant), checked. */
export function resolveLink(settings: LinkSettings): LinkProfile | undefined {
  if (!LINK_MODES.includes(settings.mode))
    throw new RangeError(`link mode must be instant or realistic, not ${JSON.stringify(settings.mode)}`);
  const tuned = [settings.baud, settings.latencyMs, settings.nvWriteMs, settings.nvDeleteMs].some(
    (v) => v !== undefined,
  );
  if (settings.mode === "instant") {
    if (tuned) throw new RangeError("baud, latency and NV costs apply to the realistic link only");
    return undefined;
  }
  return checkProfile({
    ...REALISTIC_LINK,
    ...(settings.baud !== undefined ? { baud: settings.baud } : {}),
    ...(settings.latencyMs !== undefined ? { requestLatencyMs: settings.latencyMs } : {}),
    ...(settings.nvWriteMs !== undefined ? { nvWriteMs: settings.nvWriteMs } : {}),
    ...(settings.nvDeleteMs !== undefined ? { nvDeleteMs: settings.nvDeleteMs } : {}),
  });
}

/** The link as the control socket reports it. */
export type LinkDescription =
  | { mode: "instant" }
  | {
      mode: "realistic";
      baud: number;
      bits_per_byte: number;
      latency_ms: number;
      nv_write_ms: number;
      nv_delete_ms: number;
    };

export function describeLink(profile: LinkProfile | undefined): LinkDescription {
  if (!profile) return { mode: "instant" };
  return {
    mode: "realistic",
    baud: profile.baud,
    bits_per_byte: profile.bitsPerByte,
    latency_ms: profile.requestLatencyMs,
    nv_write_ms: profile.nvWriteMs,
    nv_delete_ms: profile.nvDeleteMs,
  };
}

/** The fields of a `set-link` control request, as both simulators' clients send them. */
export function linkRequestFields(settings: LinkSettings): Record<string, unknown> {
  return {
    mode: settings.mode,
    ...(settings.baud !== undefined ? { baud: settings.baud } : {}),
    ...(settings.latencyMs !== undefined ? { latency_ms: settings.latencyMs } : {}),
    ...(settings.nvWriteMs !== undefined ? { nv_write_ms: settings.nvWriteMs } : {}),
    ...(settings.nvDeleteMs !== undefined ? { nv_delete_ms: settings.nvDeleteMs } : {}),
  };
}

/**
 * `{"cmd":"set-link","mode":"realistic","latency_ms":11,"baud":115200,"nv_write_ms":4,"nv_delete_ms":15}`;
 * `cmd` is the command as the simulator spells it, for the error messages.
 */
export function linkSettingsFromRequest(request: Record<string, unknown>, cmd: string): LinkSettings {
  const known = new Set(["cmd", "mode", "baud", "latency_ms", "nv_write_ms", "nv_delete_ms"]);
  const unknown = Object.keys(request).filter((k) => !known.has(k));
  if (unknown.length > 0) throw new Error(`${cmd}: unknown field(s) ${unknown.join(", ")}`);
  const number = (key: string): number | undefined => {
    const value = request[key];
    if (value === undefined) return undefined;
    if (typeof value !== "number") throw new Error(`${cmd}: ${key} must be a number`);
    return value;
  };
  const mode = request.mode;
  if (mode !== "instant" && mode !== "realistic")
    throw new Error(`${cmd} needs mode: "instant" or "realistic"`);
  return {
    mode,
    baud: number("baud"),
    latencyMs: number("latency_ms"),
    nvWriteMs: number("nv_write_ms"),
    nvDeleteMs: number("nv_delete_ms"),
  };
}
