/**
 * ASH, the Asynchronous Serial Host protocol that carries EZSP over a UART (Silicon Labs UG101):
 * frames delimited by a flag byte, byte stuffing for the reserved bytes, a CRC-CCITT per frame, and
 * (DATA frames only) a pseudo-random XOR mask over the data field so that repeated reserved bytes
 * do not double a frame's length. Pure functions and a streaming decoder, shared by both ends: the
 * host's protocol state (frame numbers, acknowledgements, retransmission) lives in host.ts, the
 * simulated NCP's in test/lab/simulator-ember/ash-ncp.ts.
 */

/** Reserved bytes (UG101 §2.3). */
export const AshByte = {
  FLAG: 0x7e,
  ESCAPE: 0x7d,
  XON: 0x11,
  XOFF: 0x13,
  SUBSTITUTE: 0x18,
  CANCEL: 0x1a,
  /** Between frames: the NCP wants to wake the host; inside a frame it is ordinary data. */
  WAKE: 0xff,
} as const;

export const ASH_RESERVED: ReadonlySet<number> = new Set([
  AshByte.FLAG,
  AshByte.ESCAPE,
  AshByte.XON,
  AshByte.XOFF,
  AshByte.SUBSTITUTE,
  AshByte.CANCEL,
]);

/** An escaped byte is sent XORed with this. */
export const ASH_FLIP = 0x20;

export const ASH_VERSION = 2;

/** Control bytes of the frames without a frame number. */
export const AshControl = { RST: 0xc0, RSTACK: 0xc1, ERROR: 0xc2 } as const;

/** Reset and error codes carried by RSTACK and ERROR (UG101 table 3). */
export const ResetCode = {
  UNKNOWN: 0x00,
  EXTERNAL: 0x01,
  POWER_ON: 0x02,
  WATCHDOG: 0x03,
  ASSERT: 0x06,
  BOOTLOADER: 0x09,
  SOFTWARE: 0x0b,
  EXCEEDED_MAXIMUM_ACK_TIMEOUT_COUNT: 0x51,
} as const;

/** Longest EZSP frame ASH carries (the data field). */
export const ASH_MAX_DATA = 220;
/** A data field shorter than an EZSP header cannot be a DATA frame. */
export const ASH_MIN_DATA = 3;

/** CRC-CCITT (polynomial 0x1021, initial value 0xFFFF, not reflected), as UG101 specifies. */
export function crcCcitt(bytes: Uint8Array, initial = 0xffff): number {
  let crc = initial;
  for (const byte of bytes) {
    crc ^= byte << 8;
    for (let bit = 0; bit < 8; bit++)
      crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc;
}

/**
 * XOR the data field with the LFSR sequence (seed 0x42, polynomial 0xB8). The operation is its own
 * inverse, so the same function randomizes and derandomizes.
 */
export function randomize(data: Uint8Array): Buffer {
  const out = Buffer.from(data);
  let seed = 0x42;
  for (let i = 0; i < out.length; i++) {
    out[i] = out[i]! ^ seed;
    seed = seed & 1 ? (seed >> 1) ^ 0xb8 : seed >> 1;
  }
  return out;
}

/** Escape every reserved byte as ESCAPE, byte ^ 0x20. */
export function stuff(bytes: Uint8Array): Buffer {
  const out: number[] = [];
  for (const byte of bytes) {
    if (ASH_RESERVED.has(byte)) out.push(AshByte.ESCAPE, byte ^ ASH_FLIP);
    else out.push(byte);
  }
  return Buffer.from(out);
}

export type AshFrame =
  | { kind: "data"; frmNum: number; ackNum: number; reTx: boolean; data: Buffer }
  | { kind: "ack"; ackNum: number; notReady: boolean }
  | { kind: "nak"; ackNum: number; notReady: boolean }
  | { kind: "rst" }
  | { kind: "rstack"; version: number; code: number }
  | { kind: "error"; version: number; code: number };

/** Control byte and (for DATA, already randomized) field of a frame, before CRC and stuffing. */
function frameBody(frame: AshFrame): Buffer {
  switch (frame.kind) {
    case "data":
      return Buffer.concat([
        Buffer.from([((frame.frmNum & 7) << 4) | (frame.reTx ? 0x08 : 0) | (frame.ackNum & 7)]),
        randomize(frame.data),
      ]);
    case "ack":
      return Buffer.from([0x80 | (frame.notReady ? 0x08 : 0) | (frame.ackNum & 7)]);
    case "nak":
      return Buffer.from([0xa0 | (frame.notReady ? 0x08 : 0) | (frame.ackNum & 7)]);
    case "rst":
      return Buffer.from([AshControl.RST]);
    case "rstack":
      return Buffer.from([AshControl.RSTACK, frame.version, frame.code]);
    case "error":
      return Buffer.from([AshControl.ERROR, frame.version, frame.code]);
  }
}

/** The bytes of one frame on the wire: stuffed body and CRC (high byte first), then the flag. */
export function encodeAshFrame(frame: AshFrame): Buffer {
  if (frame.kind === "data" && (frame.data.length < ASH_MIN_DATA || frame.data.length > ASH_MAX_DATA))
    throw new RangeError(`ASH DATA field of ${frame.data.length} bytes (${ASH_MIN_DATA}–${ASH_MAX_DATA})`);
  const body = frameBody(frame);
  const crc = crcCcitt(body);
  return Buffer.concat([
    stuff(Buffer.concat([body, Buffer.from([crc >> 8, crc & 0xff])])),
    Buffer.from([AshByte.FLAG]),
  ]);
}

/** Interpret a received control byte plus field (CRC already checked and removed). */
export function parseAshBody(body: Buffer): AshFrame | { kind: "invalid"; control: number; length: number } {
  const control = body[0]!;
  const length = body.length;
  if ((control & 0x80) === 0) {
    if (length - 1 < ASH_MIN_DATA || length - 1 > ASH_MAX_DATA) return { kind: "invalid", control, length };
    return {
      kind: "data",
      frmNum: (control >> 4) & 7,
      ackNum: control & 7,
      reTx: (control & 0x08) !== 0,
      data: randomize(body.subarray(1)),
    };
  }
  if ((control & 0xe0) === 0x80 && length === 1)
    return { kind: "ack", ackNum: control & 7, notReady: (control & 0x08) !== 0 };
  if ((control & 0xe0) === 0xa0 && length === 1)
    return { kind: "nak", ackNum: control & 7, notReady: (control & 0x08) !== 0 };
  if (control === AshControl.RST && length === 1) return { kind: "rst" };
  if (control === AshControl.RSTACK && length === 3)
    return { kind: "rstack", version: body[1]!, code: body[2]! };
  if (control === AshControl.ERROR && length === 3)
    return { kind: "error", version: body[1]!, code: body[2]! };
  return { kind: "invalid", control, length };
}

/** What the decoder hands on: a frame, or why the bytes up to a flag were no frame. */
export type AshDecoded =
  | { kind: "frame"; frame: AshFrame }
  | { kind: "invalid"; control: number; length: number }
  | { kind: "bad-crc"; control: number | undefined }
  | { kind: "comm-error" }
  | { kind: "too-short" }
  | { kind: "too-long" };

/**
 * Turns a byte stream into frames, as the receiving side of UG101 §2.3 describes: flags end
 * frames, ESCAPE flips the next byte, CANCEL drops a partial frame, SUBSTITUTE poisons the frame
 * it appears in (a UART error), XON/XOFF are flow control and not data, a WAKE byte between frames
 * is ignored. Bytes are kept until their frame's flag arrives, so frames may come in pieces.
 */
export class AshDecoder {
  private buffer: number[] = [];
  private escaped = false;
  private poisoned = false;
  /** Partial frames dropped by a CANCEL byte. */
  cancelled = 0;

  push(chunk: Uint8Array): AshDecoded[] {
    const out: AshDecoded[] = [];
    for (const byte of chunk) {
      switch (byte) {
        case AshByte.FLAG: {
          const result = this.finish();
          if (result) out.push(result);
          break;
        }
        case AshByte.ESCAPE:
          this.escaped = true;
          break;
        case AshByte.CANCEL:
          if (this.buffer.length > 0) this.cancelled++;
          this.reset();
          break;
        case AshByte.SUBSTITUTE:
          this.poisoned = true;
          break;
        case AshByte.XON:
        case AshByte.XOFF:
          break;
        default:
          if (byte === AshByte.WAKE && this.buffer.length === 0 && !this.escaped) break;
          this.buffer.push(this.escaped ? byte ^ ASH_FLIP : byte);
          this.escaped = false;
          // No valid frame is this long: keep counting, report it at the flag.
          if (this.buffer.length > 1 + ASH_MAX_DATA + 2 + 1) this.buffer.length = 1 + ASH_MAX_DATA + 2 + 1;
      }
    }
    return out;
  }

  private reset(): void {
    this.buffer = [];
    this.escaped = false;
    this.poisoned = false;
  }

  private finish(): AshDecoded | undefined {
    const bytes = this.buffer;
    const poisoned = this.poisoned;
    this.reset();
    if (bytes.length === 0 && !poisoned) return undefined;
    if (poisoned) return { kind: "comm-error" };
    if (bytes.length < 3) return { kind: "too-short" };
    if (bytes.length > 1 + ASH_MAX_DATA + 2) return { kind: "too-long" };
    const body = Buffer.from(bytes.slice(0, -2));
    const crc = (bytes[bytes.length - 2]! << 8) | bytes[bytes.length - 1]!;
    if (crcCcitt(body) !== crc) return { kind: "bad-crc", control: body[0] };
    const frame = parseAshBody(body);
    if (frame.kind === "invalid") return frame;
    return { kind: "frame", frame };
  }
}

/** One line for the frame trace. */
export function describeAshFrame(frame: AshFrame): string {
  switch (frame.kind) {
    case "data":
      return `DATA(${frame.frmNum},${frame.ackNum},${frame.reTx ? 1 : 0}) ${frame.data.toString("hex")}`;
    case "ack":
      return `ACK(${frame.ackNum})${frame.notReady ? "-" : "+"}`;
    case "nak":
      return `NAK(${frame.ackNum})${frame.notReady ? "-" : "+"}`;
    case "rst":
      return "RST()";
    case "rstack":
      return `RSTACK(${frame.version},0x${frame.code.toString(16).padStart(2, "0")})`;
    case "error":
      return `ERROR(${frame.version},0x${frame.code.toString(16).padStart(2, "0")})`;
  }
}
