import { readFileSync } from "node:fs";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { ieeeFromHex } from "../../lab/simulator/codec.js";
import { encodeFrame, FrameParser, type MtFrame, MtType, Subsystem } from "../../lab/simulator/frame.js";
import { NvStore, type ZigpyNvramDump } from "../../lab/simulator/nv.js";
import { type HostLink, ZnpDevice } from "../../lab/simulator/simulator.js";

const resetDump = JSON.parse(
  readFileSync("/work/shared/data/nvram/CC2652R-ZStack4.reset.json", "utf8"),
) as ZigpyNvramDump;
const formedDump = JSON.parse(
  readFileSync("/work/shared/data/nvram/CC2652R-ZStack4.formed.json", "utf8"),
) as ZigpyNvramDump;

const IEEE = "00124b0011223344";
const RESET_DELAY = 100;
const STEP = 10;

const u16 = (v: number) => Buffer.from([v & 0xff, v >> 8]);
const u32 = (v: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v >>> 0);
  return b;
};
const hex = (s: string) => Buffer.from(s, "hex");

/** A host on the other end of the "serial port": sends frames, records what comes back. */
class Host {
  readonly received: MtFrame[] = [];
  private readonly parser = new FrameParser();
  readonly link: HostLink;
  closed = false;

  constructor(readonly dev: ZnpDevice) {
    this.link = {
      label: "test",
      write: (data) => this.received.push(...this.parser.push(data)),
      close: () => {
        this.closed = true;
      },
    };
  }

  sreq(subsystem: number, command: number, data: Buffer = Buffer.alloc(0)): Buffer {
    const before = this.received.length;
    this.dev.receive(this.link, encodeFrame({ type: MtType.SREQ, subsystem, command, data }));
    const reply = this.received.slice(before).find((f) => f.type === MtType.SRSP);
    if (!reply) throw new Error("no SRSP");
    expect(reply.subsystem === subsystem || reply.subsystem === Subsystem.RPC_ERROR).toBe(true);
    return reply.data;
  }

  areq(subsystem: number, command: number, data: Buffer): void {
    this.dev.receive(this.link, encodeFrame({ type: MtType.AREQ, subsystem, command, data }));
  }

  callbacks(): string[] {
    return this.received
      .filter((f) => f.type === MtType.AREQ)
      .map((f) => `${f.subsystem.toString(16)}:${f.command.toString(16)}:${f.data.toString("hex")}`);
  }

  // NV helpers, the way the hosts use MT
  osalLength(id: number): number {
    return this.sreq(Subsystem.SYS, 0x13, u16(id)).readUInt16LE(0);
  }

  osalRead(id: number): Buffer | undefined {
    const len = this.osalLength(id);
    if (len === 0) return undefined;
    let data = Buffer.alloc(0);
    while (data.length < len) {
      const r = this.sreq(Subsystem.SYS, 0x1c, Buffer.concat([u16(id), u16(data.length)]));
      expect(r[0]).toBe(0);
      data = Buffer.concat([data, r.subarray(2, 2 + r[1]!)]);
    }
    return data;
  }

  osalWrite(id: number, value: Buffer, offset = 0): number {
    return this.sreq(
      Subsystem.SYS,
      0x1d,
      Buffer.concat([u16(id), u16(offset), u16(value.length), value]),
    )[0]!;
  }

  deviceInfo(): { state: number; short: number; ieee: Buffer } {
    const r = this.sreq(Subsystem.UTIL, 0x00);
    return { ieee: r.subarray(1, 9), short: r.readUInt16LE(9), state: r[12]! };
  }
}

function makeDevice(options: { nv?: NvStore; fps?: number } = {}) {
  const nv = options.nv ?? new NvStore();
  const dev = new ZnpDevice({
    nv,
    hardwareIeee: ieeeFromHex(IEEE),
    maxNwkFrameCounter: 0,
    framesPerSecond: options.fps ?? 0,
    resetDelayMs: RESET_DELAY,
    stepDelayMs: STEP,
    counterTickMs: 100,
  });
  dev.powerOn();
  const host = new Host(dev);
  expect(dev.attachHost(host.link)).toBe(true);
  return { dev, nv, host };
}

/** What herdsman does to form a network on channel 15 with pan 0x1a62. */
function formLikeHerdsman(host: Host): void {
  host.osalWrite(0x0003, hex("03"));
  host.areq(Subsystem.SYS, 0x00, hex("01"));
  vi.advanceTimersByTime(RESET_DELAY);
  host.osalWrite(0x0003, hex("00"));
  host.osalWrite(0x0083, u16(0x1a62));
  host.osalWrite(0x0084, u32(1 << 15));
  host.osalWrite(0x002d, hex("8877665544332211"));
  host.osalWrite(0x0047, hex("8877665544332211"));
  host.osalWrite(0x0062, hex("0102030405060708090a0b0c0d0e0f10"));
  expect(host.sreq(Subsystem.APP_CNF, 0x08, Buffer.concat([hex("01"), u32(1 << 15)]))).toEqual(hex("00"));
  expect(host.sreq(Subsystem.APP_CNF, 0x08, Buffer.concat([hex("00"), u32(0)]))).toEqual(hex("00"));
  expect(host.sreq(Subsystem.APP_CNF, 0x05, hex("04"))).toEqual(hex("00"));
  vi.advanceTimersByTime(10 * STEP);
}

beforeEach(() => {
  vi.useFakeTimers();
});

afterEach(() => {
  vi.useRealTimers();
});

describe("a blank simulated dongle", () => {
  it("holds the same items as a real CC2652R after nvram_reset and a reboot, with its own identity", () => {
    const { dev, nv } = makeDevice();
    const dump = nv.toZigpyDump(dev.pollRateOld16());
    // same items; the order differs because the fixture came from an older zigpy-znp
    expect(Object.keys(dump.LEGACY!).sort()).toEqual(Object.keys(resetDump.LEGACY!).sort());
    for (const [name, value] of Object.entries(resetDump.LEGACY!)) {
      if (["EXTADDR", "EXTENDED_PAN_ID"].includes(name)) expect(dump.LEGACY![name]).toBe("44332211004b1200");
      else if (["PRECFGKEY", "TCLK_SEED"].includes(name))
        expect(dump.LEGACY![name]).toMatch(/^[0-9a-f]{32}$/);
      else expect(dump.LEGACY![name], name).toBe(value);
    }
    for (const table of ["TCLK_TABLE", "APS_KEY_DATA_TABLE", "NWK_SEC_MATERIAL_TABLE"]) {
      expect(dump[table]).toEqual(resetDump[table]);
    }
    expect(Object.keys(dump).sort()).toEqual(Object.keys(resetDump).sort());
  });

  it("answers the identity commands hosts probe with", () => {
    const { host } = makeDevice();
    const caps = host.sreq(Subsystem.SYS, 0x01).readUInt16LE(0);
    expect(caps & 0x0400).toBe(0x0400); // APP_CNF: zigpy-znp treats its absence as Z-Stack 1.2
    const version = host.sreq(Subsystem.SYS, 0x02);
    expect([...version.subarray(0, 5)]).toEqual([2, 1, 2, 7, 1]); // product 1 = Z-Stack 3.x.0
    expect(version.readUInt32LE(5)).toBe(20230507);
    expect(host.sreq(Subsystem.SYS, 0x04)).toEqual(ieeeFromHex(IEEE));
    expect(host.deviceInfo()).toEqual({ ieee: ieeeFromHex(IEEE), short: 0xfffe, state: 0 });
    // zigpy-znp infers aligned structs from a 36-byte associated_devices_t
    expect(host.sreq(Subsystem.UTIL, 0x49, hex("00"))).toHaveLength(36);
  });

  it("answers an unknown command with the MT RPC error naming it", () => {
    const { host } = makeDevice();
    expect(host.sreq(Subsystem.SYS, 0x7e)).toEqual(hex("02217e"));
    expect(host.sreq(0x0a, 0x01)).toEqual(hex("012a01"));
  });
});

describe("NV commands", () => {
  it("osalNvItemInit creates with status 0x09 (NV_ITEM_UNINIT), then reports 0x00 for an existing item", () => {
    const { host } = makeDevice();
    const init = Buffer.concat([u16(0x0060), u16(1), hex("01"), hex("55")]);
    expect(host.sreq(Subsystem.SYS, 0x07, init)).toEqual(hex("09"));
    expect(host.sreq(Subsystem.SYS, 0x07, init)).toEqual(hex("00"));
    expect(host.osalRead(0x0060)).toEqual(hex("55"));
    // ids above 0x03FF are out of MT's reach on Z-Stack 3
    expect(
      host.sreq(Subsystem.SYS, 0x07, Buffer.concat([u16(0x0f00), u16(1), hex("01"), hex("55")])),
    ).toEqual(hex("0a"));
  });

  it("reads long items in chunks of at most 248 bytes and rejects offsets past the end", () => {
    const { host, nv } = makeDevice();
    const big = Buffer.from(Array.from({ length: 300 }, (_, i) => i & 0xff));
    nv.setLegacy(0x0200, big);
    const first = host.sreq(Subsystem.SYS, 0x1c, Buffer.concat([u16(0x0200), u16(0)]));
    expect(first[1]).toBe(248);
    expect(host.osalRead(0x0200)).toEqual(big);
    expect(host.sreq(Subsystem.SYS, 0x1c, Buffer.concat([u16(0x0200), u16(300)]))).toEqual(hex("0200"));
    expect(host.sreq(Subsystem.SYS, 0x1c, Buffer.concat([u16(0x0201), u16(0)]))).toEqual(hex("0a00"));
  });

  it("writes only inside an existing item and deletes only with the right length", () => {
    const { host } = makeDevice();
    expect(host.osalWrite(0x0083, hex("3412"))).toBe(0);
    expect(host.osalRead(0x0083)).toEqual(hex("3412"));
    expect(host.osalWrite(0x0083, hex("010203"))).toBe(0x02);
    expect(host.osalWrite(0x0061, hex("05"))).toBe(0x09);
    expect(host.sreq(Subsystem.SYS, 0x12, Buffer.concat([u16(0x0083), u16(4)]))).toEqual(hex("0c"));
    expect(host.sreq(Subsystem.SYS, 0x12, Buffer.concat([u16(0x0083), u16(2)]))).toEqual(hex("00"));
    expect(host.osalLength(0x0083)).toBe(0);
    expect(host.sreq(Subsystem.SYS, 0x12, Buffer.concat([u16(0x0083), u16(2)]))).toEqual(hex("09"));
  });

  it("proxies POLL_RATE_OLD16 to the low half of POLL_RATE, readable with the old osalNvRead", () => {
    const { host } = makeDevice();
    expect(host.sreq(Subsystem.SYS, 0x08, Buffer.concat([u16(0x0024), hex("00")]))).toEqual(hex("0002b80b"));
    expect(host.osalWrite(0x0024, hex("e803"))).toBe(0);
    expect(host.osalRead(0x0035)!.subarray(0, 4)).toEqual(hex("e8030000"));
  });

  it("implements the extended table commands with NVINTF statuses", () => {
    const { host } = makeDevice();
    const id = (sub: number) => Buffer.concat([hex("01"), u16(0x0001), u16(sub)]);
    expect(host.sreq(Subsystem.SYS, 0x32, id(0))).toEqual(u32(0)); // ADDRMGR absent on a blank chip
    expect(host.sreq(Subsystem.SYS, 0x33, Buffer.concat([id(0), u16(0), hex("0c")]))).toEqual(hex("0a00"));
    expect(host.sreq(Subsystem.SYS, 0x34, Buffer.concat([id(0), u16(0), hex("01"), hex("aa")]))).toEqual(
      hex("0a"),
    );
    expect(host.sreq(Subsystem.SYS, 0x30, Buffer.concat([id(0), u32(12)]))).toEqual(hex("00"));
    expect(host.sreq(Subsystem.SYS, 0x32, id(0))).toEqual(u32(12));
    const entry = hex("02ff4b6657d42bfeff570b00");
    expect(host.sreq(Subsystem.SYS, 0x34, Buffer.concat([id(0), u16(0), hex("0c"), entry]))).toEqual(
      hex("00"),
    );
    expect(host.sreq(Subsystem.SYS, 0x33, Buffer.concat([id(0), u16(0), hex("0c")]))).toEqual(
      Buffer.concat([hex("000c"), entry]),
    );
    expect(host.sreq(Subsystem.SYS, 0x34, Buffer.concat([id(0), u16(4), hex("0c"), entry]))).toEqual(
      hex("05"),
    );
    expect(host.sreq(Subsystem.SYS, 0x31, id(0))).toEqual(hex("00"));
    expect(host.sreq(Subsystem.SYS, 0x31, id(0))).toEqual(hex("0a"));
    // TCLK_TABLE answering NVLength is how zigpy-znp recognises Z-Stack 3.30+
    expect(host.sreq(Subsystem.SYS, 0x32, Buffer.concat([hex("01"), u16(0x0004), u16(0)]))).toEqual(u32(20));
  });
});

describe("resets", () => {
  it("answers SYS.resetReq with the CC2652's SYS.resetInd after the reboot, ignoring frames meanwhile", () => {
    const { host } = makeDevice();
    host.areq(Subsystem.SYS, 0x00, hex("01"));
    host.dev.receive(
      host.link,
      encodeFrame({ type: MtType.SREQ, subsystem: Subsystem.SYS, command: 0x01, data: Buffer.alloc(0) }),
    );
    expect(host.received).toHaveLength(0);
    vi.advanceTimersByTime(RESET_DELAY);
    expect(host.callbacks()).toEqual(["1:80:000201020701"]);
    expect(host.deviceInfo().state).toBe(0);
  });

  it("keeps NV and groups but loses the registered endpoints (RAM)", () => {
    const { host } = makeDevice();
    const register = Buffer.concat([
      hex("01"),
      u16(0x0104),
      u16(0x0005),
      hex("00"),
      hex("00"),
      hex("00"),
      hex("00"),
    ]);
    expect(host.sreq(Subsystem.AF, 0x00, register)).toEqual(hex("00"));
    expect(host.sreq(Subsystem.AF, 0x00, register)).toEqual(hex("b8"));
    expect(host.sreq(Subsystem.ZDO, 0x4b, Buffer.concat([hex("f2"), u16(0x0b84), hex("00")]))).toEqual(
      hex("00"),
    );
    host.areq(Subsystem.SYS, 0x00, hex("01"));
    vi.advanceTimersByTime(RESET_DELAY);
    host.received.length = 0;
    expect(host.sreq(Subsystem.ZDO, 0x05, Buffer.concat([u16(0), u16(0)]))).toEqual(hex("00"));
    vi.advanceTimersByTime(STEP);
    expect(host.callbacks()).toEqual(["5:85:000000000000"]); // src, status, nwk, no endpoints
    const found = host.sreq(Subsystem.ZDO, 0x4a, Buffer.concat([hex("f2"), u16(0x0b84)]));
    expect(found).toHaveLength(19); // herdsman's parser needs the full aps_Group_t
    expect(found.subarray(0, 3)).toEqual(hex("00840b"));
    expect(host.sreq(Subsystem.ZDO, 0x4a, Buffer.concat([hex("f2"), u16(0x0001)]))).toEqual(
      Buffer.concat([hex("01"), Buffer.alloc(18)]),
    );
  });

  it("acts on STARTUP_OPTION 0x03: network state and config cleared, frame counters kept, bits cleared", () => {
    const { host, nv } = makeDevice();
    nv.applyZigpyDump(formedDump);
    host.osalWrite(0x0003, hex("03"));
    host.areq(Subsystem.SYS, 0x00, hex("01"));
    vi.advanceTimersByTime(RESET_DELAY);
    expect(host.osalRead(0x0003)).toEqual(hex("00"));
    expect(host.osalLength(0x0021)).toBe(0);
    expect(host.osalRead(0x003a)).toEqual(Buffer.alloc(17));
    expect(host.osalRead(0x0082)).toEqual(Buffer.alloc(24));
    expect(host.osalRead(0x0055)).toEqual(hex("00"));
    expect(host.osalRead(0x0083)).toEqual(hex("ffff"));
    expect(host.osalRead(0x0047)).toEqual(Buffer.alloc(8));
    expect(host.osalRead(0x002d)).toEqual(host.osalRead(0x0001));
    expect(nv.table(0x0001).every((e) => e.equals(Buffer.alloc(12, 0xff)))).toBe(true);
    expect(nv.table(0x0001)).toHaveLength(257);
    expect(nv.table(0x0007)[0]).toEqual(hex("4c1d0000a083e6b5a838baa2"));
  });

  it("clears the frame counters too when bit 0x80 is set", () => {
    const { host, nv } = makeDevice();
    nv.applyZigpyDump(formedDump);
    host.osalWrite(0x0003, hex("82"));
    host.areq(Subsystem.SYS, 0x00, hex("01"));
    vi.advanceTimersByTime(RESET_DELAY);
    expect(nv.table(0x0007)[0]).toEqual(Buffer.alloc(12));
    expect(host.osalRead(0x0003)).toEqual(hex("00"));
  });

  it("recreates the default items after everything was deleted (nvram_reset), STARTUP_OPTION 0x02", () => {
    const { host, nv, dev } = makeDevice();
    nv.applyZigpyDump(formedDump);
    nv.clear();
    host.areq(Subsystem.SYS, 0x00, hex("01"));
    vi.advanceTimersByTime(RESET_DELAY);
    const dump = nv.toZigpyDump(dev.pollRateOld16());
    expect(Object.keys(dump.LEGACY!).sort()).toEqual(Object.keys(resetDump.LEGACY!).sort());
    expect(dump.LEGACY!.STARTUP_OPTION).toBe("02");
    expect(dump.LEGACY!.EXTADDR).toBe("44332211004b1200");
  });
});

describe("network formation and start-up", () => {
  it("forms the configured network through BDB commissioning with the callbacks a CC2652P sends", () => {
    const { host, nv } = makeDevice();
    formLikeHerdsman(host);
    expect(host.callbacks()).toEqual([
      "1:80:000201020701",
      "f:80:010204",
      "5:c0:08",
      "5:c0:08",
      "5:c0:09",
      "f:80:000200",
    ]);
    const nib = host.osalRead(0x0021)!;
    expect(nib).toHaveLength(116);
    expect(nib.readUInt16LE(36)).toBe(0x1a62);
    expect(nib[24]).toBe(15);
    expect(nib.readUInt32LE(40)).toBe(1 << 15);
    expect(nib.subarray(57, 65)).toEqual(hex("8877665544332211"));
    expect(host.osalRead(0x003a)).toEqual(hex("000102030405060708090a0b0c0d0e0f10"));
    expect(host.osalRead(0x003b)).toEqual(hex("000102030405060708090a0b0c0d0e0f10"));
    expect(host.osalRead(0x0082)).toEqual(hex("000102030405060708090a0b0c0d0e0f10ffffff00000000"));
    expect(host.osalRead(0x0055)).toEqual(hex("01"));
    expect(host.osalRead(0x004c)).toHaveLength(20);
    expect(nv.table(0x0001)).toHaveLength(257);
    expect(nv.table(0x0007)[0]).toEqual(hex("000000008877665544332211"));
    expect(host.deviceInfo()).toMatchObject({ state: 9, short: 0x0000 });
    const info = host.sreq(Subsystem.ZDO, 0x50);
    expect(info).toHaveLength(24);
    expect(info.readUInt16LE(3)).toBe(0x1a62);
    expect(info.subarray(7, 15)).toEqual(hex("8877665544332211"));
    expect(info[23]).toBe(15);
  });

  it("resumes the stored network with ZDO.startupFromApp after a reset", () => {
    const { host } = makeDevice();
    formLikeHerdsman(host);
    host.areq(Subsystem.SYS, 0x00, hex("01"));
    vi.advanceTimersByTime(RESET_DELAY);
    expect(host.deviceInfo()).toMatchObject({ state: 0, short: 0xfffe });
    host.received.length = 0;
    expect(host.sreq(Subsystem.ZDO, 0x40, u16(100))).toEqual(hex("00"));
    vi.advanceTimersByTime(5 * STEP);
    expect(host.callbacks()).toEqual(["5:c0:08", "5:c0:09"]);
    expect(host.deviceInfo().state).toBe(9);
  });

  it("keeps a network formed on a fresh chip (STARTUP_OPTION still 0x02) across the next reboot", () => {
    const { host } = makeDevice();
    expect(host.osalRead(0x0003)).toEqual(hex("02"));
    expect(host.sreq(Subsystem.ZDO, 0x40, u16(100))).toEqual(hex("01"));
    vi.advanceTimersByTime(5 * STEP);
    expect(host.osalRead(0x0003)).toEqual(hex("00"));
    host.areq(Subsystem.SYS, 0x00, hex("01"));
    vi.advanceTimersByTime(RESET_DELAY);
    expect(host.osalLength(0x0021)).toBe(116);
    expect(host.sreq(Subsystem.ZDO, 0x40, u16(100))).toEqual(hex("00"));
  });

  it("starts a new network when the host sets STARTUP_OPTION 0x02 without a reset", () => {
    const { host } = makeDevice();
    formLikeHerdsman(host);
    host.areq(Subsystem.SYS, 0x00, hex("01"));
    vi.advanceTimersByTime(RESET_DELAY);
    host.osalWrite(0x0003, hex("02"));
    host.osalWrite(0x0083, u16(0x2222));
    expect(host.sreq(Subsystem.ZDO, 0x40, u16(100))).toEqual(hex("01"));
    vi.advanceTimersByTime(5 * STEP);
    expect(host.osalRead(0x0021)!.readUInt16LE(36)).toBe(0x2222);
  });

  it("forms from PANID/CHANLIST on ZDO.startupFromApp when NV holds no network (status 1)", () => {
    const { host } = makeDevice();
    host.osalWrite(0x0083, u16(0x4321));
    host.osalWrite(0x0084, u32(1 << 20));
    expect(host.sreq(Subsystem.ZDO, 0x40, u16(100))).toEqual(hex("01"));
    vi.advanceTimersByTime(5 * STEP);
    const nib = host.osalRead(0x0021)!;
    expect(nib.readUInt16LE(36)).toBe(0x4321);
    expect(nib[24]).toBe(20);
    expect(host.deviceInfo().state).toBe(9);
  });
});

describe("channel change", () => {
  it("moves the network to the requested channel on herdsman's Mgmt_NWK_Update_req (scan duration FE)", () => {
    const { host } = makeDevice();
    formLikeHerdsman(host);
    // herdsman's payload: destination FFFD, broadcast mode, mask, FE, nwkUpdateId, padding
    const req = Buffer.concat([u16(0xfffd), hex("0f"), u32(1 << 20), hex("fe"), hex("01"), hex("0000")]);
    expect(host.sreq(Subsystem.ZDO, 0x37, req)).toEqual(hex("00"));
    vi.advanceTimersByTime(1000);
    const nib = host.osalRead(0x0021)!;
    expect(nib[24]).toBe(20);
    expect(nib.readUInt32LE(40)).toBe(1 << 20);
    expect(nib[114]).toBe(1);
    expect(host.sreq(Subsystem.ZDO, 0x50)[23]).toBe(20);
  });
});

describe("the network frame counter", () => {
  it("advances while started and a host is connected, and is stored in NV and NWKKEY", () => {
    const { host, dev, nv } = makeDevice({ fps: 10 });
    formLikeHerdsman(host);
    expect(dev.currentFrameCounter()).toBe(0);
    vi.advanceTimersByTime(2000);
    expect(dev.currentFrameCounter()).toBe(20);
    expect(nv.table(0x0007)[0]!.readUInt32LE(0)).toBe(20);
    expect(nv.getLegacy(0x0082)!.readUInt32LE(20)).toBe(20);
    expect(dev.maxNwkFrameCounter).toBe(20);
  });

  it("stops when the host disconnects and does not survive as RAM across a reset", () => {
    const { host, dev, nv } = makeDevice({ fps: 10 });
    formLikeHerdsman(host);
    vi.advanceTimersByTime(1000);
    dev.detachHost(host.link);
    vi.advanceTimersByTime(5000);
    expect(dev.currentFrameCounter()).toBe(10);
    expect(dev.attachHost(host.link)).toBe(true);
    host.areq(Subsystem.SYS, 0x00, hex("01"));
    vi.advanceTimersByTime(5000);
    expect(dev.status(false).state).toBe("hold");
    expect(nv.table(0x0007)[0]!.readUInt32LE(0)).toBe(10);
  });

  it("starts from the value in NV (a restored backup's counter + 2500) and never lowers a raised NV value", () => {
    const { host, dev, nv } = makeDevice({ fps: 10 });
    nv.applyZigpyDump(formedDump);
    expect(host.sreq(Subsystem.ZDO, 0x40, u16(100))).toEqual(hex("00"));
    vi.advanceTimersByTime(3 * STEP);
    expect(dev.currentFrameCounter()).toBe(7500);
    const raised = hex("00000100a083e6b5a838baa2"); // 65536, e.g. written by nvram_write meanwhile
    nv.setExtended(1, 7, 0, raised);
    vi.advanceTimersByTime(1000);
    expect(dev.currentFrameCounter()).toBeGreaterThan(65536);
    expect(dev.maxNwkFrameCounter).toBe(dev.currentFrameCounter());
  });

  it("counts frames the host sends (data requests, permit join) as used counter values", () => {
    const { host, dev } = makeDevice();
    formLikeHerdsman(host);
    host.sreq(Subsystem.ZDO, 0x36, Buffer.concat([hex("0f"), u16(0xfffc), hex("00"), hex("01")]));
    const req = Buffer.concat([
      hex("0f"),
      hex("fdff000000000000"),
      hex("f2"),
      u16(0),
      hex("f2"),
      u16(0x0021),
      hex("01"),
      hex("00"),
      hex("1e"),
      u16(1),
      hex("00"),
    ]);
    expect(host.sreq(Subsystem.AF, 0x02, req)).toEqual(hex("00"));
    expect(dev.currentFrameCounter()).toBe(2);
  });
});

describe("power", () => {
  it("dies with the host link on power-off and refuses hosts until powered on again", () => {
    const { host, dev } = makeDevice();
    formLikeHerdsman(host);
    dev.powerOff();
    expect(host.closed).toBe(true);
    expect(dev.attachHost(host.link)).toBe(false);
    dev.powerOn();
    expect(dev.attachHost(host.link)).toBe(true);
    expect(host.deviceInfo().state).toBe(0);
    expect(host.osalLength(0x0021)).toBe(116);
  });

  it("serves one host at a time, like a serial port", () => {
    const { dev } = makeDevice();
    const other = new Host(dev);
    expect(dev.attachHost(other.link)).toBe(false);
  });
});
