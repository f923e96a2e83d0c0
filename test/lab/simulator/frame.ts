/**
 * Z-Stack MT (ZNP) framing over a byte stream: `FE LEN CMD0 CMD1 DATA FCS`, FCS = XOR of LEN..DATA.
 * CMD0 = type << 5 | subsystem. The parser tolerates frames split across reads and skips bytes
 * before a start-of-frame (herdsman writes one 0xEF bootloader-skip byte, zigpy-znp 256 of them).
 */

export const SOF = 0xfe;
/** MT limits a frame's payload to 250 bytes (zigpy-znp drops longer frames as invalid). */
export const MAX_PAYLOAD = 250;

export enum MtType {
  POLL = 0,
  SREQ = 1,
  AREQ = 2,
  SRSP = 3,
}

export enum Subsystem {
  RPC_ERROR = 0x00,
  SYS = 0x01,
  MAC = 0x02,
  NWK = 0x03,
  AF = 0x04,
  ZDO = 0x05,
  SAPI = 0x06,
  UTIL = 0x07,
  DEBUG = 0x08,
  APP = 0x09,
  APP_CNF = 0x0f,
  GP = 0x15,
}

export interface MtFrame {
  type: MtType;
  subsystem: number;
  command: number;
  data: Buffer;
}

export function fcs(bytes: Uint8Array): number {
  let x = 0;
  for (const b of bytes) x ^= b;
  return x;
}

export function encodeFrame(frame: MtFrame): Buffer {
  if (frame.data.length > MAX_PAYLOAD) {
    throw new RangeError(`MT payload of ${frame.data.length} bytes exceeds ${MAX_PAYLOAD}`);
  }
  const out = Buffer.alloc(frame.data.length + 5);
  out[0] = SOF;
  out[1] = frame.data.length;
  out[2] = ((frame.type & 0x07) << 5) | (frame.subsystem & 0x1f);
  out[3] = frame.command & 0xff;
  frame.data.copy(out, 4);
  out[out.length - 1] = fcs(out.subarray(1, out.length - 1));
  return out;
}

export function describeFrame(frame: MtFrame): string {
  const sub = Subsystem[frame.subsystem] ?? `0x${frame.subsystem.toString(16)}`;
  return `${MtType[frame.type]} ${sub} 0x${frame.command.toString(16).padStart(2, "0")} [${frame.data.toString("hex")}]`;
}

/** Incremental parser: feed it chunks as they arrive, get back every complete, valid frame. */
export class FrameParser {
  private buffer: Buffer = Buffer.alloc(0);
  /** Bytes dropped so far (noise before a SOF, or frames with a bad checksum). */
  discarded = 0;

  push(chunk: Buffer): MtFrame[] {
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    const frames: MtFrame[] = [];
    for (;;) {
      const start = this.buffer.indexOf(SOF);
      if (start < 0) {
        this.discarded += this.buffer.length;
        this.buffer = Buffer.alloc(0);
        break;
      }
      if (start > 0) {
        this.discarded += start;
        this.buffer = this.buffer.subarray(start);
      }
      if (this.buffer.length < 5) break;
      const len = this.buffer[1]!;
      if (len > MAX_PAYLOAD) {
        this.dropOne();
        continue;
      }
      if (this.buffer.length < len + 5) break;
      const body = this.buffer.subarray(1, len + 4);
      if (fcs(body) !== this.buffer[len + 4]) {
        // A corrupt frame: resynchronise on the next SOF after this one, as a UART peer would.
        this.dropOne();
        continue;
      }
      const cmd0 = this.buffer[2]!;
      frames.push({
        type: (cmd0 >> 5) & 0x07,
        subsystem: cmd0 & 0x1f,
        command: this.buffer[3]!,
        data: Buffer.from(this.buffer.subarray(4, len + 4)),
      });
      this.buffer = this.buffer.subarray(len + 5);
    }
    return frames;
  }

  reset(): void {
    this.buffer = Buffer.alloc(0);
  }

  private dropOne(): void {
    this.discarded += 1;
    this.buffer = this.buffer.subarray(1);
  }
}
