/**
 * EZSP frames as ASH DATA fields carry them (UG100 §3): the legacy header `seq, frameControl,
 * frameId` that only the very first VERSION command uses, and the extended header of EZSP v8+
 * `seq, frameControl (2 bytes, format version 1 in the high byte), frameId (2 bytes)`. All numbers
 * are little-endian; EUI64s travel least significant byte first.
 */

/** Frame control, low byte (UG100 §3.2). */
export const FrameControl = {
  RESPONSE: 0x80,
  NETWORK_INDEX_MASK: 0x60,
  /** Response: the NCP has more callbacks pending (synchronous callbacks only). */
  PENDING_CALLBACKS: 0x04,
  TRUNCATED: 0x02,
  OVERFLOW: 0x01,
  /** Response: this frame is a callback the NCP sent on its own (asynchronous callbacks, UART). */
  ASYNC_CALLBACK: 0x10,
} as const;

/** Frame control, high byte: the extended frame format's version in the low two bits. */
export const EXTENDED_FORMAT_VERSION = 0x01;
const EXTENDED_RESERVED_MASK = 0x3c;

export interface EzspCommand {
  sequence: number;
  frameControl: number;
  frameId: number;
  /** The legacy three-byte header (only the first VERSION command of a session uses it). */
  legacy: boolean;
  parameters: Buffer;
}

export class EzspFrameError extends Error {}

/**
 * Parse a command frame from the host. A frame whose third byte has format version 1 in its low
 * bits is extended (as herdsman's own parser decides for responses); otherwise it is legacy.
 */
export function decodeEzspCommand(data: Buffer): EzspCommand {
  if (data.length < 3) throw new EzspFrameError(`EZSP frame of ${data.length} bytes`);
  const extended = data.length >= 5 && (data[2]! & 0x03) === EXTENDED_FORMAT_VERSION;
  if (!extended) {
    return {
      sequence: data[0]!,
      frameControl: data[1]!,
      frameId: data[2]!,
      legacy: true,
      parameters: Buffer.from(data.subarray(3)),
    };
  }
  if (data[2]! & EXTENDED_RESERVED_MASK)
    throw new EzspFrameError(`EZSP frame control high byte 0x${data[2]!.toString(16)} uses reserved bits`);
  return {
    sequence: data[0]!,
    frameControl: data[1]! | (data[2]! << 8),
    frameId: data[3]! | (data[4]! << 8),
    legacy: false,
    parameters: Buffer.from(data.subarray(5)),
  };
}

export interface EzspResponse {
  sequence: number;
  frameId: number;
  parameters: Buffer;
  /** A callback the NCP sends unasked (asynchronous callback bit set). */
  callback?: boolean;
  /** Answer in the legacy format (the reply to the legacy VERSION command). */
  legacy?: boolean;
}

/** A frame from the NCP as a host reads it. */
export interface EzspIncoming {
  sequence: number;
  frameId: number;
  /** Sent unasked (asynchronous callback bit), not the answer to a command. */
  callback: boolean;
  /** The NCP ran out of room: the parameters are cut short (UG100 frame control). */
  truncated: boolean;
  /** The NCP dropped a callback for lack of memory. */
  overflow: boolean;
  legacy: boolean;
  parameters: Buffer;
}

/** Parse a response or callback frame, as the host does (same header rules as decodeEzspCommand). */
export function decodeEzspResponse(data: Buffer): EzspIncoming {
  const frame = decodeEzspCommand(data);
  const low = frame.frameControl & 0xff;
  if ((low & FrameControl.RESPONSE) === 0)
    throw new EzspFrameError(`EZSP frame control 0x${low.toString(16)} is not a response`);
  return {
    sequence: frame.sequence,
    frameId: frame.frameId,
    callback: (low & FrameControl.ASYNC_CALLBACK) !== 0,
    truncated: (low & FrameControl.TRUNCATED) !== 0,
    overflow: (low & FrameControl.OVERFLOW) !== 0,
    legacy: frame.legacy,
    parameters: frame.parameters,
  };
}

/** Build a response or callback frame from the NCP. */
export function encodeEzspResponse(response: EzspResponse): Buffer {
  const low = FrameControl.RESPONSE | (response.callback ? FrameControl.ASYNC_CALLBACK : 0);
  if (response.legacy) {
    if (response.frameId > 0xff) throw new RangeError("a legacy EZSP frame id is one byte");
    return Buffer.concat([
      Buffer.from([response.sequence & 0xff, low, response.frameId]),
      response.parameters,
    ]);
  }
  return Buffer.concat([
    Buffer.from([
      response.sequence & 0xff,
      low,
      EXTENDED_FORMAT_VERSION,
      response.frameId & 0xff,
      (response.frameId >> 8) & 0xff,
    ]),
    response.parameters,
  ]);
}

/** Build a command frame as a host does (extended format unless `legacy`). */
export function encodeEzspCommand(command: {
  sequence: number;
  frameId: number;
  parameters?: Buffer;
  legacy?: boolean;
}): Buffer {
  const parameters = command.parameters ?? Buffer.alloc(0);
  if (command.legacy)
    return Buffer.concat([Buffer.from([command.sequence & 0xff, 0x00, command.frameId]), parameters]);
  return Buffer.concat([
    Buffer.from([
      command.sequence & 0xff,
      0x00,
      EXTENDED_FORMAT_VERSION,
      command.frameId & 0xff,
      (command.frameId >> 8) & 0xff,
    ]),
    parameters,
  ]);
}

export class ShortFrameError extends EzspFrameError {}

/** Reads little-endian fields; running past the end means the other side sent too little, and throws. */
export class ByteReader {
  private offset = 0;

  constructor(private readonly buffer: Buffer) {}

  get remaining(): number {
    return this.buffer.length - this.offset;
  }

  private need(n: number): void {
    if (this.offset + n > this.buffer.length)
      throw new ShortFrameError(`parameters end after ${this.buffer.length} bytes, need ${this.offset + n}`);
  }

  u8(): number {
    this.need(1);
    return this.buffer[this.offset++]!;
  }

  i8(): number {
    this.need(1);
    const v = this.buffer.readInt8(this.offset);
    this.offset += 1;
    return v;
  }

  u16(): number {
    this.need(2);
    const v = this.buffer.readUInt16LE(this.offset);
    this.offset += 2;
    return v;
  }

  u32(): number {
    this.need(4);
    const v = this.buffer.readUInt32LE(this.offset);
    this.offset += 4;
    return v;
  }

  bytes(n: number): Buffer {
    this.need(n);
    const v = Buffer.from(this.buffer.subarray(this.offset, this.offset + n));
    this.offset += n;
    return v;
  }

  /** A length byte, then that many bytes (EZSP's "payload"). */
  payload(): Buffer {
    return this.bytes(this.u8());
  }

  /** An EUI64 on the wire (LSB first), returned MSB first as hex like the lab reports it. */
  eui64(): string {
    return Buffer.from(this.bytes(8)).reverse().toString("hex");
  }

  rest(): Buffer {
    return this.bytes(this.remaining);
  }
}

export class ByteWriter {
  private readonly parts: number[] = [];

  u8(v: number): this {
    this.parts.push(v & 0xff);
    return this;
  }

  i8(v: number): this {
    return this.u8(v < 0 ? v + 256 : v);
  }

  u16(v: number): this {
    return this.u8(v).u8(v >> 8);
  }

  u32(v: number): this {
    return this.u16(v & 0xffff).u16((v >>> 16) & 0xffff);
  }

  bytes(v: Uint8Array | readonly number[]): this {
    for (const b of v) this.u8(b);
    return this;
  }

  payload(v: Uint8Array): this {
    return this.u8(v.length).bytes(v);
  }

  /** `hex` MSB first (as the lab writes EUI64s), sent LSB first. */
  eui64(hex: string): this {
    return this.bytes(Buffer.from(hex, "hex").reverse());
  }

  build(): Buffer {
    return Buffer.from(this.parts);
  }
}
