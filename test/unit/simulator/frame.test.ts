import { describe, expect, it } from "vitest";
import { encodeFrame, FrameParser, fcs, MtType, Subsystem } from "../../lab/simulator/frame.js";

const ping = Buffer.from("fe00210120", "hex");

describe("MT framing", () => {
  it("encodes a SYS.ping SREQ with the XOR checksum over length, command and data", () => {
    expect(
      encodeFrame({ type: MtType.SREQ, subsystem: Subsystem.SYS, command: 0x01, data: Buffer.alloc(0) }),
    ).toEqual(ping);
    const reply = encodeFrame({
      type: MtType.SRSP,
      subsystem: Subsystem.SYS,
      command: 0x01,
      data: Buffer.from([0x59, 0x06]),
    });
    expect(reply.toString("hex")).toBe("fe02610159063d");
    expect(fcs(reply.subarray(1, -1))).toBe(reply[reply.length - 1]);
  });

  it("refuses a payload longer than MT allows", () => {
    expect(() =>
      encodeFrame({ type: MtType.SRSP, subsystem: Subsystem.SYS, command: 0x1c, data: Buffer.alloc(251) }),
    ).toThrow(/exceeds 250/);
  });

  it("reassembles a frame delivered one byte at a time", () => {
    const frame = encodeFrame({
      type: MtType.SREQ,
      subsystem: Subsystem.SYS,
      command: 0x1c,
      data: Buffer.from("21000000", "hex"),
    });
    const parser = new FrameParser();
    const out = [];
    for (const byte of frame) out.push(...parser.push(Buffer.from([byte])));
    expect(out).toEqual([
      { type: MtType.SREQ, subsystem: Subsystem.SYS, command: 0x1c, data: Buffer.from("21000000", "hex") },
    ]);
  });

  it("skips bootloader-skip bytes (herdsman's single 0xEF, zigpy-znp's 256) before the first frame", () => {
    const parser = new FrameParser();
    expect(parser.push(Buffer.from([0xef]))).toEqual([]);
    const frames = parser.push(Buffer.concat([Buffer.alloc(256, 0xef), ping]));
    expect(frames).toHaveLength(1);
    expect(frames[0]).toMatchObject({ type: MtType.SREQ, subsystem: Subsystem.SYS, command: 0x01 });
    expect(parser.discarded).toBe(257);
  });

  it("drops a frame with a bad checksum and finds the next good one", () => {
    const bad = Buffer.from(ping);
    bad[4] = 0x20 ^ 0xff;
    const frames = new FrameParser().push(Buffer.concat([bad, ping]));
    expect(frames).toHaveLength(1);
    expect(frames[0]!.command).toBe(0x01);
  });

  it("resynchronises after a length byte no MT frame can have", () => {
    const frames = new FrameParser().push(Buffer.concat([Buffer.from([0xfe, 0xff, 0x21]), ping]));
    expect(frames).toHaveLength(1);
  });

  it("parses several frames from one read and keeps a partial tail for the next", () => {
    const parser = new FrameParser();
    const both = Buffer.concat([ping, ping, ping.subarray(0, 3)]);
    expect(parser.push(both)).toHaveLength(2);
    expect(parser.push(ping.subarray(3))).toHaveLength(1);
  });
});
