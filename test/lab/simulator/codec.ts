/** Little-endian readers and writers for MT payloads, with bounds errors a handler can report. */

export class PayloadError extends Error {}

export class Reader {
  private offset = 0;
  constructor(private readonly buf: Buffer) {}

  private need(n: number): void {
    if (this.offset + n > this.buf.length) {
      throw new PayloadError(
        `payload too short: need ${n} byte(s) at offset ${this.offset} of ${this.buf.length}`,
      );
    }
  }

  u8(): number {
    this.need(1);
    return this.buf.readUInt8(this.offset++);
  }

  u16(): number {
    this.need(2);
    const v = this.buf.readUInt16LE(this.offset);
    this.offset += 2;
    return v;
  }

  u32(): number {
    this.need(4);
    const v = this.buf.readUInt32LE(this.offset);
    this.offset += 4;
    return v;
  }

  bytes(n: number): Buffer {
    this.need(n);
    const v = Buffer.from(this.buf.subarray(this.offset, this.offset + n));
    this.offset += n;
    return v;
  }

  rest(): Buffer {
    const v = Buffer.from(this.buf.subarray(this.offset));
    this.offset = this.buf.length;
    return v;
  }

  get remaining(): number {
    return this.buf.length - this.offset;
  }
}

export class Writer {
  private readonly parts: Buffer[] = [];

  u8(v: number): this {
    const b = Buffer.alloc(1);
    b.writeUInt8(v & 0xff);
    this.parts.push(b);
    return this;
  }

  u16(v: number): this {
    const b = Buffer.alloc(2);
    b.writeUInt16LE(v & 0xffff);
    this.parts.push(b);
    return this;
  }

  u32(v: number): this {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v >>> 0);
    this.parts.push(b);
    return this;
  }

  bytes(v: Uint8Array): this {
    this.parts.push(Buffer.from(v));
    return this;
  }

  build(): Buffer {
    return Buffer.concat(this.parts);
  }
}

/** "00124b0012345678" (most significant byte first, as people write IEEE addresses) → 8 bytes LE. */
export function ieeeFromHex(hex: string): Buffer {
  const clean = hex.toLowerCase().replace(/^0x/, "").replace(/:/g, "");
  if (!/^[0-9a-f]{16}$/.test(clean)) {
    throw new Error(`not an IEEE address (16 hex digits): ${JSON.stringify(hex)}`);
  }
  return Buffer.from(clean, "hex").reverse();
}

/** 8 bytes LE (as stored in NV and sent over MT) → "00124b0012345678". */
export function ieeeToHex(le: Uint8Array): string {
  return Buffer.from(le).reverse().toString("hex");
}
