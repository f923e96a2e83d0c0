import { describe, expect, it } from "vitest";
import {
  AshDecoder,
  type AshFrame,
  crcCcitt,
  encodeAshFrame,
  parseAshBody,
  randomize,
  stuff,
} from "../../../sidecar/coordinator/ember/ash.js";
import { classifyAshChunk } from "../../lab/simulator-ember/link.js";

const hex = (b: Buffer) => b.toString("hex");
const bytes = (h: string) => Buffer.from(h.replace(/\s/g, ""), "hex");

describe("ASH CRC", () => {
  it("is CRC-CCITT with initial value 0xFFFF (the standard check value and UG101's RST)", () => {
    expect(crcCcitt(Buffer.from("123456789"))).toBe(0x29b1);
    expect(crcCcitt(bytes("c0"))).toBe(0x38bc);
    expect(crcCcitt(bytes("c10202"))).toBe(0x9b7b);
  });
});

describe("ASH data randomization", () => {
  it("XORs with the LFSR sequence from seed 0x42 (UG101: 42 21 A8 54 2A 15 B2 59 ...)", () => {
    expect(hex(randomize(Buffer.alloc(8)))).toBe("4221a8542a15b259");
  });

  it("is its own inverse", () => {
    const data = Buffer.from(Array.from({ length: 220 }, (_, i) => (i * 37) & 0xff));
    expect(randomize(randomize(data))).toEqual(data);
  });
});

describe("ASH byte stuffing", () => {
  it("escapes the six reserved bytes as 7D, byte ^ 0x20 and nothing else", () => {
    expect(hex(stuff(bytes("7e 7d 11 13 18 1a ff 00 20 5e")))).toBe("7d5e7d5d7d317d337d387d3aff00205e");
  });
});

describe("ASH frame encoding (UG101 examples)", () => {
  it.each<[string, AshFrame, string]>([
    ["RST()", { kind: "rst" }, "c038bc7e"],
    ["RSTACK(2, power-on)", { kind: "rstack", version: 2, code: 0x02 }, "c102029b7b7e"],
    ["ACK(1)+", { kind: "ack", ackNum: 1, notReady: false }, "8160597e"],
    ["ACK(6)-", { kind: "ack", ackNum: 6, notReady: true }, "8e91b67e"],
    ["NAK(6)+", { kind: "nak", ackNum: 6, notReady: false }, "a634dc7e"],
    ["NAK(5)-", { kind: "nak", ackNum: 5, notReady: true }, "ad85b77e"],
    // EZSP "version" command 00 00 00 02, randomized
    [
      "DATA(2,5,0)",
      { kind: "data", frmNum: 2, ackNum: 5, reTx: false, data: bytes("00000002") },
      "254221a856a6097e",
    ],
  ])("%s", (_name, frame, wire) => {
    expect(hex(encodeAshFrame(frame))).toBe(wire);
  });

  it("DATA(5,3,0) of the version response randomizes as UG101 shows (its printed CRC is a known typo)", () => {
    // UG101 prints 53 42 A1 A8 56 28 04 82 96 23 7E; the CRC over those bytes is 03 2A, which is also
    // what zigbee-herdsman's halCommonCrc16 computes.
    const wire = encodeAshFrame({
      kind: "data",
      frmNum: 5,
      ackNum: 3,
      reTx: false,
      data: bytes("00800002021130"),
    });
    expect(hex(wire)).toBe("5342a1a856280482032a7e");
  });

  it("stuffs reserved bytes that the randomization or the CRC produce", () => {
    // 0x7E ^ 0x42 = 0x3C: a data byte of 0x3C becomes a flag value after randomization
    const wire = encodeAshFrame({ kind: "data", frmNum: 0, ackNum: 0, reTx: false, data: bytes("3c0000") });
    expect(wire.subarray(0, -1).includes(0x7e)).toBe(false);
    expect(hex(wire.subarray(1, 3))).toBe("7d5e");
    const [decoded] = new AshDecoder().push(wire);
    expect(decoded).toEqual({
      kind: "frame",
      frame: { kind: "data", frmNum: 0, ackNum: 0, reTx: false, data: bytes("3c0000") },
    });
  });

  it("encodes the control byte of DATA as frmNum, reTx flag and ackNum (and stuffs it when it is 0x7E)", () => {
    const wire = encodeAshFrame({ kind: "data", frmNum: 7, ackNum: 6, reTx: true, data: bytes("000000") });
    expect(wire.subarray(0, 2).toString("hex")).toBe("7d5e");
    expect(
      encodeAshFrame({ kind: "data", frmNum: 3, ackNum: 1, reTx: false, data: bytes("000000") })[0],
    ).toBe(0x31);
  });

  it("refuses a DATA field EZSP cannot have", () => {
    expect(() =>
      encodeAshFrame({ kind: "data", frmNum: 0, ackNum: 0, reTx: false, data: Buffer.alloc(2) }),
    ).toThrow();
    expect(() =>
      encodeAshFrame({ kind: "data", frmNum: 0, ackNum: 0, reTx: false, data: Buffer.alloc(221) }),
    ).toThrow();
  });
});

describe("ASH frame decoding", () => {
  it("reads the RSTACK a real NCP sends after RST (CANCEL first, software reset)", () => {
    const decoder = new AshDecoder();
    expect(decoder.push(bytes("1ac1020b0a527e"))).toEqual([
      { kind: "frame", frame: { kind: "rstack", version: 2, code: 0x0b } },
    ]);
    expect(decoder.cancelled).toBe(0);
  });

  it("round-trips every frame kind, delivered one byte at a time", () => {
    const frames: AshFrame[] = [
      { kind: "rst" },
      { kind: "rstack", version: 2, code: 0x0b },
      { kind: "error", version: 2, code: 0x51 },
      { kind: "ack", ackNum: 3, notReady: false },
      { kind: "nak", ackNum: 7, notReady: true },
      {
        kind: "data",
        frmNum: 6,
        ackNum: 1,
        reTx: true,
        data: Buffer.from(Array.from({ length: 220 }, (_, i) => i)),
      },
    ];
    const decoder = new AshDecoder();
    const out = [];
    for (const byte of Buffer.concat(frames.map(encodeAshFrame)))
      out.push(...decoder.push(Buffer.from([byte])));
    expect(out).toEqual(frames.map((frame) => ({ kind: "frame", frame })));
  });

  it("drops a partial frame at CANCEL and counts it", () => {
    const decoder = new AshDecoder();
    const ack = encodeAshFrame({ kind: "ack", ackNum: 2, notReady: false });
    const out = decoder.push(Buffer.concat([ack.subarray(0, 2), Buffer.from([0x1a]), ack]));
    expect(out).toEqual([{ kind: "frame", frame: { kind: "ack", ackNum: 2, notReady: false } }]);
    expect(decoder.cancelled).toBe(1);
  });

  it("reports a frame hit by SUBSTITUTE (a UART error) as a communication error", () => {
    expect(new AshDecoder().push(bytes("81 18 60 59 7e"))).toEqual([{ kind: "comm-error" }]);
  });

  it("reports a bad CRC with the control byte (the NCP NAKs damaged DATA frames)", () => {
    expect(new AshDecoder().push(bytes("25 42 21 a8 56 a6 08 7e"))).toEqual([
      { kind: "bad-crc", control: 0x25 },
    ]);
  });

  it("ignores XON/XOFF anywhere and a WAKE byte between frames", () => {
    expect(new AshDecoder().push(bytes("ff 81 11 60 13 59 7e"))).toEqual([
      { kind: "frame", frame: { kind: "ack", ackNum: 1, notReady: false } },
    ]);
  });

  it("reports frames that are too short or too long, and ignores flags between frames", () => {
    const decoder = new AshDecoder();
    expect(decoder.push(bytes("7e 7e 81 60 7e"))).toEqual([{ kind: "too-short" }]);
    expect(decoder.push(Buffer.concat([Buffer.alloc(300, 0x01), Buffer.from([0x7e])]))).toEqual([
      { kind: "too-long" },
    ]);
  });

  it("rejects control bytes with the wrong length", () => {
    expect(parseAshBody(bytes("c0 00"))).toEqual({ kind: "invalid", control: 0xc0, length: 2 });
    expect(parseAshBody(bytes("81 00"))).toEqual({ kind: "invalid", control: 0x81, length: 2 });
    expect(parseAshBody(bytes("25 00 00"))).toEqual({ kind: "invalid", control: 0x25, length: 3 });
  });
});

describe("ASH chunk classification (for the serial-line model)", () => {
  it("finds the EZSP frame id inside a randomized extended DATA frame", () => {
    const data = bytes("05 00 01 1e 00 11223344");
    expect(
      classifyAshChunk(encodeAshFrame({ kind: "data", frmNum: 1, ackNum: 0, reTx: false, data })),
    ).toEqual({
      kind: "data",
      ezspFrameId: 0x001e,
    });
  });

  it("reads the legacy VERSION command as frame id 0, and RST after a CANCEL as RST", () => {
    const legacy = encodeAshFrame({
      kind: "data",
      frmNum: 0,
      ackNum: 0,
      reTx: false,
      data: bytes("00000013"),
    });
    expect(classifyAshChunk(legacy)).toEqual({ kind: "data", ezspFrameId: 0 });
    expect(classifyAshChunk(bytes("1a c0 38 bc 7e"))).toEqual({ kind: "rst" });
    expect(classifyAshChunk(bytes("81 60 59 7e"))).toEqual({ kind: "other" });
  });
});
