import { describe, expect, it } from "vitest";
import {
  ByteReader,
  ByteWriter,
  decodeEzspCommand,
  EzspFrameError,
  encodeEzspCommand,
  encodeEzspResponse,
  ShortFrameError,
} from "../../../sidecar/coordinator/ember/ezsp-frame.js";

const bytes = (h: string) => Buffer.from(h.replace(/\s/g, ""), "hex");

describe("EZSP frame decoding", () => {
  it("reads herdsman's first VERSION command in the legacy format", () => {
    expect(decodeEzspCommand(bytes("00 00 00 13"))).toEqual({
      sequence: 0,
      frameControl: 0,
      frameId: 0,
      legacy: true,
      parameters: bytes("13"),
    });
  });

  it("reads the extended format (frame control 2 bytes with format version 1, frame id 2 bytes)", () => {
    expect(decodeEzspCommand(bytes("07 00 01 14 01 01 00"))).toEqual({
      sequence: 7,
      frameControl: 0x0100,
      frameId: 0x0114,
      legacy: false,
      parameters: bytes("0100"),
    });
  });

  it("refuses reserved bits in the high frame control byte, and frames shorter than a header", () => {
    expect(() => decodeEzspCommand(bytes("07 00 05 52 00"))).toThrow(EzspFrameError);
    expect(() => decodeEzspCommand(bytes("07 00"))).toThrow(EzspFrameError);
  });
});

describe("EZSP frame encoding", () => {
  it("builds extended responses with the response bit, and callbacks with the async-callback bit too", () => {
    expect(
      encodeEzspResponse({ sequence: 3, frameId: 0x0052, parameters: bytes("00000000 0c00") }).toString(
        "hex",
      ),
    ).toBe("0380015200000000000c00");
    expect(
      encodeEzspResponse({
        sequence: 9,
        frameId: 0x0019,
        parameters: bytes("15000000"),
        callback: true,
      }).toString("hex"),
    ).toBe("0990011900" + "15000000");
  });

  it("answers the legacy VERSION in the legacy format", () => {
    expect(
      encodeEzspResponse({ sequence: 0, frameId: 0, parameters: bytes("0e 02 2080"), legacy: true }).toString(
        "hex",
      ),
    ).toBe("0080000e022080");
  });

  it("round-trips host commands", () => {
    const frame = encodeEzspCommand({ sequence: 200, frameId: 0x0116 });
    expect(frame.toString("hex")).toBe("c800011601");
    expect(decodeEzspCommand(frame)).toMatchObject({ sequence: 200, frameId: 0x0116, legacy: false });
  });
});

describe("EZSP field codecs", () => {
  it("writes and reads little-endian integers, payloads and EUI64s (sent least significant byte first)", () => {
    const buf = new ByteWriter()
      .u8(1)
      .i8(-2)
      .u16(0x1234)
      .u32(0xdeadbeef)
      .payload(bytes("aabb"))
      .eui64("8c65a3fffe0000a1")
      .build();
    expect(buf.toString("hex")).toBe("01fe3412efbeadde02aabba10000feffa3658c");
    const r = new ByteReader(buf);
    expect([r.u8(), r.i8(), r.u16(), r.u32(), r.payload().toString("hex"), r.eui64()]).toEqual([
      1,
      -2,
      0x1234,
      0xdeadbeef,
      "aabb",
      "8c65a3fffe0000a1",
    ]);
    expect(r.remaining).toBe(0);
  });

  it("throws when parameters end early", () => {
    expect(() => new ByteReader(bytes("0102")).u32()).toThrow(ShortFrameError);
    expect(() => new ByteReader(bytes("05 01")).payload()).toThrow(ShortFrameError);
  });
});
