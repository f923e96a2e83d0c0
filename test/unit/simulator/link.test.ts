/**
 * The timed serial line: every delay is computed from the profile and checked on a manual clock,
 * so nothing here waits or depends on how fast the machine is.
 */
import { afterEach, describe, expect, it } from "vitest";
import { ieeeFromHex } from "../../lab/simulator/codec.js";
import { encodeFrame, FrameParser, type MtFrame, MtType, Subsystem } from "../../lab/simulator/frame.js";
import {
  byteTimeMs,
  type Clock,
  describeLink,
  LinkStats,
  ManualClock,
  processingMs,
  REALISTIC_LINK,
  resolveLink,
  SerialLink,
  wireTimeMs,
} from "../../lab/simulator/link.js";
import { NvStore } from "../../lab/simulator/nv.js";
import { type HostLink, ZnpDevice } from "../../lab/simulator/simulator.js";

const P = REALISTIC_LINK;
const BYTE = 10 / 115.2; // ms per byte at 115200 baud, 10 bits per byte
const LATENCY = 11;

const u16 = (v: number) => Buffer.from([v & 0xff, v >> 8]);
const sreq = (subsystem: number, command: number, data: Buffer = Buffer.alloc(0)) =>
  encodeFrame({ type: MtType.SREQ, subsystem, command, data });
/** A frame of exactly `total` bytes on the wire (payload total - 5). */
const srspOfLength = (total: number) =>
  encodeFrame({
    type: MtType.SRSP,
    subsystem: Subsystem.SYS,
    command: 0x1c,
    data: Buffer.alloc(total - 5, 0xab),
  });

/** Both ends of a link, recording when (on the manual clock) each delivery happened. */
function rig(reply?: (bytes: Buffer, link: SerialLink) => void, clock: Clock = new ManualClock()) {
  const toDevice: { at: number; bytes: Buffer }[] = [];
  const toHost: { at: number; bytes: Buffer }[] = [];
  const stats = new LinkStats();
  const link: SerialLink = new SerialLink(
    P,
    {
      toDevice: (bytes) => {
        toDevice.push({ at: clock.now(), bytes });
        reply?.(bytes, link);
      },
      toHost: (bytes) => toHost.push({ at: clock.now(), bytes }),
    },
    clock,
    stats,
  );
  return { link, toDevice, toHost, stats, clock };
}

describe("the link profile", () => {
  it("115200 baud 8N1 is 10 bits per byte: a 250-byte frame takes 21.7 ms on the wire", () => {
    expect(byteTimeMs(P)).toBeCloseTo(BYTE, 9);
    expect(wireTimeMs(250, P)).toBeCloseTo(21.7014, 3);
  });

  it("charges the chip latency for every request, plus flash costs for NV writes and deletes", () => {
    const cmd0 = (type: MtType, subsystem: number) => (type << 5) | subsystem;
    const sys = cmd0(MtType.SREQ, Subsystem.SYS);
    expect(processingMs(sys, 0x13, P)).toBe(LATENCY); // osalNvLength
    expect(processingMs(sys, 0x1c, P)).toBe(LATENCY); // osalNvReadExt
    expect(processingMs(sys, 0x33, P)).toBe(LATENCY); // nvRead
    for (const write of [0x03, 0x07, 0x09, 0x1d, 0x30, 0x34, 0x35])
      expect(processingMs(sys, write, P), `0x${write.toString(16)}`).toBe(LATENCY + P.nvWriteMs);
    expect(processingMs(sys, 0x12, P)).toBe(LATENCY + P.nvDeleteMs); // osalNvDelete
    expect(processingMs(sys, 0x31, P)).toBe(LATENCY + P.nvDeleteMs); // nvDelete
    expect(processingMs(cmd0(MtType.AREQ, Subsystem.SYS), 0x00, P)).toBe(LATENCY); // resetReq
    expect(processingMs(cmd0(MtType.SREQ, Subsystem.ZDO), 0x50, P)).toBe(LATENCY);
  });

  it("resolves settings: instant is no profile, realistic the defaults with the changes asked for", () => {
    expect(resolveLink({ mode: "instant" })).toBeUndefined();
    expect(resolveLink({ mode: "realistic" })).toEqual(REALISTIC_LINK);
    expect(resolveLink({ mode: "realistic", latencyMs: 3, baud: 230400 })).toEqual({
      ...REALISTIC_LINK,
      requestLatencyMs: 3,
      baud: 230400,
    });
    expect(describeLink(undefined)).toEqual({ mode: "instant" });
    expect(describeLink(REALISTIC_LINK)).toEqual({
      mode: "realistic",
      baud: 115200,
      bits_per_byte: 10,
      latency_ms: 11,
      nv_write_ms: 4,
      nv_delete_ms: 15,
    });
  });

  it("refuses settings that make no sense, with the reason", () => {
    expect(() => resolveLink({ mode: "instant", latencyMs: 5 })).toThrow(/realistic link only/);
    expect(() => resolveLink({ mode: "realistic", baud: 0 })).toThrow(/baud/);
    expect(() => resolveLink({ mode: "realistic", latencyMs: -1 })).toThrow(/latency/);
    expect(() => resolveLink({ mode: "realistic", nvDeleteMs: Number.NaN })).toThrow(/delete/);
    expect(() => resolveLink({ mode: "fast" as "instant" })).toThrow(/instant or realistic/);
  });
});

describe("a timed serial line", () => {
  it("a 250-byte reply reaches the host 21.7 ms + the latency after its request arrived, not before", () => {
    const request = sreq(Subsystem.SYS, 0x1c, Buffer.concat([u16(0x0021), u16(0)])); // 9 bytes
    const reply = srspOfLength(250);
    const { link, toDevice, toHost, clock } = rig((_b, l) => l.fromDevice(reply));
    link.fromHost(request);
    const requestArrives = 9 * BYTE;
    const replyArrives = requestArrives + LATENCY + 250 * BYTE;
    (clock as ManualClock).advance(replyArrives - 0.001);
    expect(toDevice.map((d) => d.at)).toEqual([expect.closeTo(requestArrives + LATENCY, 9)]);
    expect(toHost).toEqual([]);
    (clock as ManualClock).advance(0.001);
    expect(toHost).toHaveLength(1);
    expect(toHost[0]!.at).toBeCloseTo(replyArrives, 9);
    expect(replyArrives).toBeCloseTo(0.78 + 11 + 21.7, 1);
    expect(toHost[0]!.bytes).toEqual(reply);
  });

  it("sends a direction's bytes back to back: a second write waits for the first to cross", () => {
    const { link, toDevice, clock } = rig();
    const a = Buffer.alloc(100, 0xef);
    const b = Buffer.alloc(100, 0xef);
    link.fromHost(a);
    link.fromHost(b);
    (clock as ManualClock).runAll();
    // noise costs line time only; each run reaches the chip when its last byte has arrived
    expect(toDevice.map((d) => d.at)).toEqual([expect.closeTo(100 * BYTE, 9), expect.closeTo(200 * BYTE, 9)]);
  });

  it("lets zigpy-znp's 256 bootloader-skip bytes delay the ping behind them by their line time", () => {
    const ping = sreq(Subsystem.SYS, 0x01); // 5 bytes
    const pong = encodeFrame({
      type: MtType.SRSP,
      subsystem: Subsystem.SYS,
      command: 0x01,
      data: u16(0x0659),
    });
    const { link, toDevice, toHost, clock } = rig((bytes, l) => {
      if (bytes[0] === 0xfe) l.fromDevice(pong);
    });
    link.fromHost(Buffer.concat([Buffer.alloc(256, 0xef), ping]));
    (clock as ManualClock).runAll();
    expect(toDevice.map((d) => d.bytes.length)).toEqual([256, 5]);
    expect(toHost[0]!.at).toBeCloseTo((256 + 5) * BYTE + LATENCY + pong.length * BYTE, 9);
  });

  it("takes a frame split over several writes when its last byte arrives", () => {
    const frame = sreq(Subsystem.SYS, 0x13, u16(0x0021)); // 7 bytes
    const { link, toDevice, clock } = rig();
    link.fromHost(frame.subarray(0, 3));
    (clock as ManualClock).advance(10);
    expect(toDevice).toEqual([]);
    link.fromHost(frame.subarray(3));
    (clock as ManualClock).runAll();
    expect(toDevice).toHaveLength(1);
    expect(toDevice[0]!.bytes).toEqual(frame);
    expect(toDevice[0]!.at).toBeCloseTo(10 + 4 * BYTE + LATENCY, 9);
  });

  it("lets the chip work on one request at a time, in order", () => {
    const write = sreq(Subsystem.SYS, 0x1d, Buffer.concat([u16(0x0083), u16(0), u16(2), u16(0x1a62)])); // 13
    const del = sreq(Subsystem.SYS, 0x12, Buffer.concat([u16(0x0021), u16(116)])); // 9
    const { link, toDevice, clock } = rig();
    link.fromHost(Buffer.concat([write, del]));
    (clock as ManualClock).runAll();
    const first = 13 * BYTE + LATENCY + P.nvWriteMs;
    // the delete arrived long before, but waits for the chip
    expect(toDevice.map((d) => d.at)).toEqual([
      expect.closeTo(first, 9),
      expect.closeTo(first + LATENCY + P.nvDeleteMs, 9),
    ]);
  });

  it("queues what the chip sends on its own behind a reply still on the wire", () => {
    const reply = srspOfLength(100);
    const callback = encodeFrame({
      type: MtType.AREQ,
      subsystem: Subsystem.SYS,
      command: 0x80,
      data: Buffer.alloc(6),
    });
    const { link, toHost, clock } = rig((_b, l) => l.fromDevice(reply));
    link.fromHost(sreq(Subsystem.SYS, 0x01));
    const replyStart = 5 * BYTE + LATENCY;
    (clock as ManualClock).advance(replyStart + 1); // the reply is crossing
    link.fromDevice(callback);
    (clock as ManualClock).runAll();
    expect(toHost.map((d) => d.at)).toEqual([
      expect.closeTo(replyStart + 100 * BYTE, 9),
      expect.closeTo(replyStart + (100 + callback.length) * BYTE, 9),
    ]);
  });

  it("keeps the schedule when a timer fires late: the lateness is not passed on to what follows", () => {
    const manual = new ManualClock();
    const LATE = 5;
    const late: Clock = { now: () => manual.now(), timer: (ms, fn) => manual.timer(ms + LATE, fn) };
    const reply = srspOfLength(100); // 8.7 ms on the wire, longer than the lateness
    const { link, toDevice, toHost } = rig((_b, l) => l.fromDevice(reply), late);
    link.fromHost(sreq(Subsystem.SYS, 0x01));
    manual.runAll();
    const handled = 5 * BYTE + LATENCY;
    expect(toDevice[0]!.at).toBeCloseTo(handled + LATE, 9);
    // the reply's crossing is computed from when the chip handled the request, not from the late
    // timer: the host sees one timer's lateness, not two
    expect(toHost[0]!.at).toBeCloseTo(handled + 100 * BYTE + LATE, 9);
  });

  it("when the host closes the port, the chip still gets what was written; replies go nowhere", () => {
    const { link, toDevice, toHost, clock } = rig((_b, l) => l.fromDevice(srspOfLength(10)));
    const reset = encodeFrame({
      type: MtType.AREQ,
      subsystem: Subsystem.SYS,
      command: 0x00,
      data: Buffer.from([1]),
    });
    link.fromHost(reset);
    let detachedAt: number | undefined;
    link.drain(() => {
      detachedAt = clock.now();
    });
    (clock as ManualClock).runAll();
    expect(toDevice.map((d) => d.bytes)).toEqual([reset]);
    expect(detachedAt).toBeCloseTo(6 * BYTE + LATENCY, 9);
    expect(toHost).toEqual([]);
  });

  it("an aborted line (unplugged) delivers nothing that was in flight", () => {
    const { link, toDevice, toHost, clock } = rig((_b, l) => l.fromDevice(srspOfLength(10)));
    link.fromHost(sreq(Subsystem.SYS, 0x01));
    link.abort();
    (clock as ManualClock).runAll();
    expect(toDevice).toEqual([]);
    expect(toHost).toEqual([]);
  });

  it("counts deliveries and how far they fell behind the schedule", () => {
    const { link, stats, clock } = rig((_b, l) => l.fromDevice(srspOfLength(10)));
    link.fromHost(sreq(Subsystem.SYS, 0x01));
    (clock as ManualClock).runAll();
    expect(stats.toJSON()).toEqual({ sessions: 1, deliveries: 2, mean_lateness_ms: 0, max_lateness_ms: 0 });
  });
});

describe("the simulated chip behind a timed line", () => {
  let dev: ZnpDevice | undefined;
  afterEach(() => dev?.powerOff());

  /** A real ZnpDevice answering through a SerialLink, the way HostPort wires it. */
  function chip() {
    const clock = new ManualClock();
    const nv = new NvStore();
    dev = new ZnpDevice({
      nv,
      hardwareIeee: ieeeFromHex("00124b0011223344"),
      maxNwkFrameCounter: 0,
      framesPerSecond: 0,
    });
    dev.powerOn();
    const parser = new FrameParser();
    const replies: { at: number; frame: MtFrame }[] = [];
    let serial: SerialLink | undefined;
    const host: HostLink = { label: "unit", write: (data) => serial!.fromDevice(data), close: () => {} };
    serial = new SerialLink(
      P,
      {
        toDevice: (bytes) => dev!.receive(host, bytes),
        toHost: (bytes) => {
          for (const frame of parser.push(bytes)) replies.push({ at: clock.now(), frame });
        },
      },
      clock,
    );
    expect(dev.attachHost(host)).toBe(true);
    return { clock, nv, serial, replies };
  }

  it("reads a 248-byte item in one 255-byte reply that needs 22.1 ms on the wire", () => {
    const { clock, nv, serial, replies } = chip();
    nv.setLegacy(0x0200, Buffer.alloc(248, 0x5a));
    serial.fromHost(sreq(Subsystem.SYS, 0x1c, Buffer.concat([u16(0x0200), u16(0)])));
    clock.runAll();
    expect(replies).toHaveLength(1);
    expect(replies[0]!.frame.data.subarray(0, 2)).toEqual(Buffer.from([0x00, 248]));
    expect(replies[0]!.at).toBeCloseTo((9 + 255) * BYTE + LATENCY, 9);
  });

  it("answers item creation after the write cost and a delete after the erase cost", () => {
    const { clock, serial, replies } = chip();
    const init = sreq(Subsystem.SYS, 0x07, Buffer.concat([u16(0x0060), u16(1), Buffer.from([1, 0x55])])); // 11
    serial.fromHost(init);
    clock.runAll();
    const created = 11 * BYTE + LATENCY + P.nvWriteMs + 6 * BYTE;
    expect(replies.map((r) => r.frame.data)).toEqual([Buffer.from([0x09])]);
    expect(replies[0]!.at).toBeCloseTo(created, 9);
    const t = clock.now();
    serial.fromHost(sreq(Subsystem.SYS, 0x12, Buffer.concat([u16(0x0060), u16(1)]))); // 9
    clock.runAll();
    expect(replies[1]!.frame.data).toEqual(Buffer.from([0x00]));
    expect(replies[1]!.at - t).toBeCloseTo(9 * BYTE + LATENCY + P.nvDeleteMs + 6 * BYTE, 9);
  });
});
