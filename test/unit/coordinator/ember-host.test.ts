import { afterEach, describe, expect, it } from "vitest";
import { ResetCode } from "../../../sidecar/coordinator/ember/ash.js";
import { EzspStatus, FrameId, SlStatus } from "../../../sidecar/coordinator/ember/constants.js";
import { ByteReader, decodeEzspResponse } from "../../../sidecar/coordinator/ember/ezsp-frame.js";
import { AshError, EzspError, EzspTimeoutError } from "../../../sidecar/coordinator/ember/host.js";
import { blankTokens } from "../../lab/simulator-ember/state-file.js";
import { FACTORY, FakeNcp, networkTokens, powerOffAll, simRig, sleep, versionAnswer } from "./ember-rig.js";

afterEach(() => powerOffAll());

const eui64Of = (p: Buffer) => new ByteReader(p).eui64();

describe("the node tool's EZSP host against the simulated NCP", () => {
  it("resets, negotiates the version as herdsman does (legacy VERSION 19, then the NCP's in the extended format)", async () => {
    const { host, ncp } = simRig({ ezspVersion: 16 });
    const version = await host.start();
    expect(version).toEqual({ ezspVersion: 16, stackType: 2, stackVersion: 0x8100 });
    expect(host.ezspVersion).toBe(16);
    expect(eui64Of(await host.command(FrameId.GET_EUI64))).toBe(FACTORY);
    const stats = ncp.getStats();
    expect(stats.commands).toMatchObject({ VERSION: 2, GET_EUI64: 1 });
    expect(stats.unknown_frame_ids).toEqual([]);
    expect(stats.ash.retransmitted).toBe(0);
    expect(host.stats.retransmitted).toBe(0);
  });

  it("runs queued commands one at a time, each matched to its own response", async () => {
    const { host } = simRig();
    await host.start();
    const [eui, channel, nodeId] = await Promise.all([
      host.command(FrameId.GET_EUI64),
      host.command(FrameId.GET_RADIO_CHANNEL),
      host.command(FrameId.GET_NODE_ID),
    ]);
    expect(eui64Of(eui)).toBe(FACTORY);
    expect(channel).toEqual(Buffer.from([11]));
    expect(nodeId.readUInt16LE(0)).toBe(0xfffe);
  });

  it("retransmits a DATA frame the line lost, after the acknowledgement timeout", async () => {
    const { host, ncp, toNcp } = simRig({ host: { ackTimeoutMs: 60 } });
    await host.start();
    let lost = false;
    toNcp.tamper = (frame) => {
      if (lost || frame.kind !== "data") return undefined;
      lost = true;
      return "drop";
    };
    const started = Date.now();
    expect(eui64Of(await host.command(FrameId.GET_EUI64))).toBe(FACTORY);
    expect(Date.now() - started).toBeGreaterThanOrEqual(55);
    expect(toNcp.dropped).toHaveLength(1);
    expect(host.stats).toMatchObject({ ack_timeouts: 1, retransmitted: 1 });
    // the NCP took the retransmission as the frame it expected, once
    expect(ncp.getStats().commands.GET_EUI64).toBe(1);
  });

  it("resends at once when the NCP NAKs a damaged frame", async () => {
    const { host, ncp, toNcp } = simRig({ host: { ackTimeoutMs: 2000 } });
    await host.start();
    let damaged = false;
    toNcp.tamper = (frame) => {
      if (damaged || frame.kind !== "data") return undefined;
      damaged = true;
      return "corrupt";
    };
    const started = Date.now();
    expect(eui64Of(await host.command(FrameId.GET_EUI64))).toBe(FACTORY);
    expect(Date.now() - started).toBeLessThan(1000);
    expect(host.stats).toMatchObject({ naks_in: 1, retransmitted: 1, ack_timeouts: 0 });
    expect(ncp.getStats().ash.naks_out).toBe(1);
  });

  it("NAKs a damaged response, so the NCP resends it", async () => {
    const { host, ncp, toHost } = simRig();
    await host.start();
    let damaged = false;
    toHost.tamper = (frame) => {
      if (damaged || frame.kind !== "data") return undefined;
      damaged = true;
      return "corrupt";
    };
    expect(eui64Of(await host.command(FrameId.GET_EUI64))).toBe(FACTORY);
    expect(host.stats).toMatchObject({ naks_out: 1, bad_frames_in: 1 });
    expect(ncp.getStats().ash).toMatchObject({ naks_in: 1, retransmitted: 1 });
  });

  it("gets a lost response through the NCP's own retransmission", async () => {
    const { host, ncp, toHost } = simRig();
    await host.start();
    let lost = false;
    toHost.tamper = (frame) => {
      if (lost || frame.kind !== "data") return undefined;
      lost = true;
      return "drop";
    };
    expect(eui64Of(await host.command(FrameId.GET_EUI64))).toBe(FACTORY);
    expect(ncp.getStats().ash).toMatchObject({ ack_timeouts: 1, retransmitted: 1 });
  });

  it("acknowledges again, without delivering twice, a response the NCP resends because our ACK was lost", async () => {
    const { host, ncp, toNcp } = simRig();
    await host.start();
    let ackLost = false;
    toNcp.tamper = (frame) => {
      if (ackLost || frame.kind !== "ack") return undefined;
      ackLost = true;
      return "drop";
    };
    expect(eui64Of(await host.command(FrameId.GET_EUI64))).toBe(FACTORY);
    const callbacks = host.callbacks.length;
    // the NCP's acknowledgement timeout is 800 ms
    await sleep(1100);
    expect(ncp.getStats().ash.retransmitted).toBe(1);
    expect(host.stats.duplicates_in).toBe(1);
    expect(host.callbacks.length).toBe(callbacks);
    expect(eui64Of(await host.command(FrameId.GET_EUI64))).toBe(FACTORY);
    expect(ncp.getStats().commands.GET_EUI64).toBe(2);
  });

  it("collects callbacks, also one that arrives before anybody waits for it", async () => {
    const tokens = blankTokens();
    tokens.network = networkTokens();
    const { host } = simRig({ tokens });
    await host.start();
    const since = host.callbacks.length;
    const status = await host.command(FrameId.NETWORK_INIT, Buffer.from([0, 0]));
    expect(status.readUInt32LE(0)).toBe(SlStatus.OK);
    await sleep(50);
    expect(host.callbacks.length).toBeGreaterThan(since);
    const up = await host.waitForCallback(
      (f) => f.frameId === FrameId.STACK_STATUS_HANDLER,
      100,
      since,
      "up",
    );
    expect(up.parameters.readUInt32LE(0)).toBe(SlStatus.NETWORK_UP);
    await expect(
      host.waitForCallback((f) => f.frameId === FrameId.MESSAGE_SENT_HANDLER, 50, since, "message sent"),
    ).rejects.toThrow(EzspTimeoutError);
  });

  it("turns INVALID_COMMAND into an error (a command before VERSION)", async () => {
    const { host } = simRig();
    await host.reset();
    await expect(host.command(FrameId.GET_EUI64)).rejects.toThrow(/refused GET_EUI64: ERROR_VERSION_NOT_SET/);
    // the link is still fine
    await host.negotiateVersion();
    expect(eui64Of(await host.command(FrameId.GET_EUI64))).toBe(FACTORY);
  });

  it("fails everything waiting when the stream closes, and refuses new work", async () => {
    const { host, toHost } = simRig();
    await host.start();
    toHost.tamper = () => "drop";
    const pending = host.command(FrameId.GET_EUI64);
    host.closed("serial port /dev/ttyX: EIO");
    await expect(pending).rejects.toThrow(AshError);
    await expect(host.command(FrameId.GET_EUI64)).rejects.toThrow(/EIO/);
    expect(() => host.reset()).toThrow(/EIO/);
  });
});

describe("the node tool's EZSP host against a scripted NCP", () => {
  it("speaks EZSP v13 (herdsman's minimum): the version is negotiated, statuses are one byte", async () => {
    const fake = new FakeNcp((c) => {
      if (c.frameId === FrameId.VERSION) return versionAnswer(13);
      if (c.frameId === FrameId.NETWORK_INIT) return Buffer.from([0x93]);
      return Buffer.alloc(0);
    });
    const version = await fake.host.start();
    expect(version.ezspVersion).toBe(13);
    expect(fake.commands.map((c) => [c.frameId, c.legacy, c.parameters[0]])).toEqual([
      [FrameId.VERSION, true, 19],
      [FrameId.VERSION, false, 13],
    ]);
  });

  it("refuses an NCP older than EZSP v13 or newer than v19, and a non-mesh stack", async () => {
    for (const [answer, message] of [
      [versionAnswer(12), /EZSP v12; this tool .* supports v13–v19/],
      [versionAnswer(20), /EZSP v20/],
      [Buffer.from([14, 0x01, 0x00, 0x80]), /stack type 1/],
    ] as const) {
      const fake = new FakeNcp((c) => (c.frameId === FrameId.VERSION ? answer : undefined));
      await expect(fake.host.start()).rejects.toThrow(message);
    }
  });

  it("times out a command the NCP acknowledges but never answers", async () => {
    const fake = new FakeNcp((c) => (c.frameId === FrameId.VERSION ? versionAnswer(14) : undefined));
    await fake.host.start();
    await expect(fake.host.command(FrameId.GET_EUI64, undefined, { timeoutMs: 80 })).rejects.toThrow(
      /no response to GET_EUI64 within 80 ms/,
    );
    expect(fake.host.stats.ack_timeouts).toBe(0);
  });

  it("declares the link dead after 6 unacknowledged retransmissions", async () => {
    const fake = new FakeNcp((c) => (c.frameId === FrameId.VERSION ? versionAnswer(14) : undefined), {
      ackTimeoutMs: 5,
      minAckTimeoutMs: 5,
      maxAckTimeoutMs: 10,
      commandTimeoutMs: 5000,
    });
    await fake.host.start();
    fake.deaf = true;
    await expect(fake.host.command(FrameId.GET_EUI64)).rejects.toThrow(
      /acknowledged nothing after 6 retransmissions/,
    );
    expect(fake.host.stats).toMatchObject({ ack_timeouts: 6, retransmitted: 5 });
    expect(fake.host.isConnected).toBe(false);
  });

  it("fails on an ASH ERROR frame and on an RSTACK it did not ask for", async () => {
    const fake = new FakeNcp((c) => (c.frameId === FrameId.VERSION ? versionAnswer(14) : undefined));
    await fake.host.start();
    const first = fake.host.command(FrameId.GET_EUI64, undefined, { timeoutMs: 1000 });
    fake.sendFrame({ kind: "error", version: 2, code: ResetCode.EXCEEDED_MAXIMUM_ACK_TIMEOUT_COUNT });
    await expect(first).rejects.toThrow(/ASH ERROR \(EXCEEDED_MAXIMUM_ACK_TIMEOUT_COUNT 0x51\)/);
    await expect(fake.host.command(FrameId.GET_EUI64)).rejects.toThrow(/not connected/);

    await fake.host.start();
    const second = fake.host.command(FrameId.GET_EUI64, undefined, { timeoutMs: 1000 });
    fake.sendFrame({ kind: "rstack", version: 2, code: ResetCode.POWER_ON });
    await expect(second).rejects.toThrow(/the NCP reset itself \(RSTACK, POWER_ON 0x02\)/);
  });

  it("waits for the RSTACK of its own RST: a power-on RSTACK seen meanwhile is ignored", async () => {
    const fake = new FakeNcp(() => undefined);
    fake.answerRst = false;
    const reset = fake.host.reset(500);
    fake.sendFrame({ kind: "rstack", version: 2, code: ResetCode.POWER_ON });
    await sleep(20);
    expect(fake.host.isConnected).toBe(false);
    fake.sendFrame({ kind: "rstack", version: 2, code: ResetCode.SOFTWARE });
    expect(await reset).toBe(ResetCode.SOFTWARE);
    expect(fake.host.stats.ignored_rstacks).toBe(1);
  });

  it("times out a reset nobody answers", async () => {
    const fake = new FakeNcp(() => undefined);
    fake.answerRst = false;
    await expect(fake.host.reset(50)).rejects.toThrow(/no RSTACK within 50 ms/);
  });

  it("names the EZSP status of an INVALID_COMMAND and rejects a response to another frame", async () => {
    const fake = new FakeNcp((c) => {
      if (c.frameId === FrameId.VERSION) return versionAnswer(14);
      if (c.frameId === FrameId.GET_EUI64)
        return {
          frameId: FrameId.INVALID_COMMAND,
          parameters: Buffer.from([EzspStatus.ERROR_INVALID_FRAME_ID]),
        };
      return { frameId: FrameId.NOP, parameters: Buffer.alloc(0) };
    });
    await fake.host.start();
    await expect(fake.host.command(FrameId.GET_EUI64)).rejects.toThrow(EzspError);
    await expect(fake.host.command(FrameId.GET_EUI64)).rejects.toThrow(/ERROR_INVALID_FRAME_ID \(0x31\)/);
    await expect(fake.host.command(FrameId.GET_NODE_ID)).rejects.toThrow(/answered GET_NODE_ID with NOP/);
  });
});

describe("EZSP response frames", () => {
  it("decodes the flags a host needs", () => {
    const frame = decodeEzspResponse(Buffer.from("07" + "92" + "01" + "1900" + "15000000", "hex"));
    expect(frame).toMatchObject({
      sequence: 7,
      frameId: FrameId.STACK_STATUS_HANDLER,
      callback: true,
      truncated: true,
      overflow: false,
      legacy: false,
    });
    expect(() => decodeEzspResponse(Buffer.from("0700010000", "hex"))).toThrow(/not a response/);
  });
});
