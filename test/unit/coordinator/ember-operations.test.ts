import { afterEach, describe, expect, it } from "vitest";
import { FrameId, SlStatus, slStatusName } from "../../../sidecar/coordinator/ember/constants.js";
import { ByteWriter, decodeEzspResponse } from "../../../sidecar/coordinator/ember/ezsp-frame.js";
import {
  Deadline,
  ncpInfo,
  parkNcp,
  parseEui64,
  setCustomEui64,
  wipeNcp,
} from "../../../sidecar/coordinator/ember/operations.js";
import { blankTokens } from "../../lab/simulator-ember/state-file.js";
import { FACTORY, FakeNcp, networkTokens, powerOffAll, simRig, versionAnswer } from "./ember-rig.js";

afterEach(() => powerOffAll());

const deadline = () => new Deadline(10_000);

function withNetwork(counter = 12_345) {
  const tokens = blankTokens();
  tokens.network = networkTokens();
  tokens.nwkFrameCounter = counter;
  return tokens;
}

describe("node tool operations against the simulated NCP", () => {
  it("info on a blank dongle: versions, its EUI64, a blank token, no network; parked afterwards", async () => {
    const { host, ncp } = simRig();
    expect(await ncpInfo(host, deadline())).toEqual({
      eui64: `0x${FACTORY}`,
      custom_eui64: null,
      ezsp_version: 14,
      stack_version: "8.0.2.0",
      network: null,
    });
    const stats = ncp.getStats();
    expect(stats.resets).toBe(2);
    expect(stats.unknown_frame_ids).toEqual([]);
    expect(stats.commands).toMatchObject({
      VERSION: 2,
      GET_VALUE: 1,
      GET_EUI64: 1,
      GET_MFG_TOKEN: 1,
      SET_CONFIGURATION_VALUE: 1,
      NETWORK_INIT: 1,
    });
    expect(ncp.status(false).state).toBe("no_network");
  });

  it("info on a dongle holding a network: brings it up to read it, then resets it (tokens untouched)", async () => {
    const tokens = withNetwork();
    const { host, ncp } = simRig({ tokens, ezspVersion: 18 });
    const info = await ncpInfo(host, deadline());
    expect(info).toEqual({
      eui64: `0x${FACTORY}`,
      custom_eui64: null,
      ezsp_version: 18,
      stack_version: "8.2.2.0",
      network: {
        pan_id: 0x1a62,
        extended_pan_id: "0x1122334455667788",
        channel: 15,
        nwk_frame_counter: 12_345,
        node_type: "coordinator",
      },
    });
    expect(ncp.status(false)).toMatchObject({ state: "down", network_up: false, configured: true });
    expect(ncp.getStats().commands).toMatchObject({ GET_NETWORK_PARAMETERS: 1, GET_NETWORK_KEY_INFO: 1 });
    expect(tokens.network).not.toBeNull();
  });

  it("info reports a written custom EUI64 token (the NCP uses it since its boot)", async () => {
    const tokens = blankTokens();
    tokens.customEui64 = "8c65a3fffe0000cc";
    const { host } = simRig({ tokens });
    const info = await ncpInfo(host, deadline());
    expect(info).toMatchObject({ eui64: "0x8c65a3fffe0000cc", custom_eui64: "0x8c65a3fffe0000cc" });
  });

  it("park: one RST, the running network stops, the tokens stay", async () => {
    const tokens = withNetwork();
    const { host, ncp } = simRig({ tokens });
    // a previous host brought the network up and went away
    await host.start();
    await host.command(FrameId.NETWORK_INIT, Buffer.from([0, 0]));
    await new Promise((r) => setTimeout(r, 30));
    expect(ncp.status(false).network_up).toBe(true);
    expect(await parkNcp(host, deadline())).toEqual({ parked: true });
    expect(ncp.status(false)).toMatchObject({ state: "down", network_up: false, pan_id: 0x1a62 });
  });

  it("wipe: erases the network tokens without starting the network, checks nothing is left, keeps the counter token", async () => {
    const tokens = withNetwork(777);
    const { host, ncp } = simRig({ tokens });
    expect(await wipeNcp(host, deadline())).toEqual({ wiped: true, method: "token-factory-reset" });
    expect(ncp.status(false)).toMatchObject({ state: "no_network", network_up: false, configured: false });
    expect(tokens.nwkFrameCounter).toBe(777);
    // The only NETWORK_INIT is the check afterwards (NOT_JOINED): the old network never came up.
    expect(ncp.getStats().commands).toMatchObject({ TOKEN_FACTORY_RESET: 1, NETWORK_INIT: 1 });
    expect(ncp.getStats().commands.LEAVE_NETWORK).toBeUndefined();
    expect(await wipeNcp(host, deadline())).toEqual({ wiped: true, method: "token-factory-reset" });
  });

  it("set-eui64: writes a blank token and the NCP uses it after the reset; the same value again is a no-op", async () => {
    const { host, ncp, tokens } = simRig();
    expect(await setCustomEui64(host, "8c65a3fffe0000cc", deadline())).toEqual({
      eui64: "0x8c65a3fffe0000cc",
      written: true,
    });
    expect(tokens.customEui64).toBe("8c65a3fffe0000cc");
    expect(ncp.status(false)).toMatchObject({
      eui64: "8c65a3fffe0000cc",
      custom_eui64_token: "8c65a3fffe0000cc",
    });
    expect(await setCustomEui64(host, "8c65a3fffe0000cc", deadline())).toEqual({
      eui64: "0x8c65a3fffe0000cc",
      written: false,
    });
    expect(ncp.getStats().commands.SET_MFG_TOKEN).toBe(1);
  });

  it("set-eui64: refuses when the one-time token holds another value, without trying to write", async () => {
    const tokens = blankTokens();
    tokens.customEui64 = "8c65a3fffe0000cc";
    const { host, ncp } = simRig({ tokens });
    await expect(setCustomEui64(host, "8c65a3fffe0000a9", deadline())).rejects.toThrow(
      "the dongle's custom EUI64 token is already written with 0x8c65a3fffe0000cc and can be written only once: this dongle cannot carry the network's EUI64 0x8c65a3fffe0000a9",
    );
    expect(ncp.getStats().commands.SET_MFG_TOKEN).toBeUndefined();
  });

  it("set-eui64: does not burn the blank token when the factory EUI64 already is the wanted one", async () => {
    const { host, tokens } = simRig();
    expect(await setCustomEui64(host, FACTORY, deadline())).toEqual({
      eui64: `0x${FACTORY}`,
      written: false,
    });
    expect(tokens.customEui64).toBeNull();
  });

  it("a failure once the network may be up resets the NCP before giving up, and says so", async () => {
    const { host, ncp, toHost } = simRig({ tokens: withNetwork() });
    // every answer to GET_NETWORK_KEY_INFO is lost on the line, retransmissions too
    toHost.tamper = (frame) =>
      frame.kind === "data" && decodeEzspResponse(frame.data).frameId === FrameId.GET_NETWORK_KEY_INFO
        ? "drop"
        : undefined;
    const error = await ncpInfo(host, new Deadline(1500)).catch((e: Error) => e);
    expect((error as Error).message).toMatch(
      /no response to GET_NETWORK_KEY_INFO within \d+ ms \(the NCP was reset afterwards: no network on the air\)/,
    );
    expect(ncp.status(false)).toMatchObject({ state: "down", network_up: false });
  });

  it("an interruption (a signal) while the network may be up still resets the NCP before giving up", async () => {
    let resets = 0;
    const fake: FakeNcp = new FakeNcp((c) => {
      if (c.frameId === FrameId.VERSION) return versionAnswer(14, 0x8020);
      if (c.frameId === FrameId.GET_VALUE)
        return Buffer.from("00000000" + "07" + "0000080002" + "00aa", "hex");
      if (c.frameId === FrameId.GET_EUI64) return Buffer.from(FACTORY, "hex").reverse();
      if (c.frameId === FrameId.GET_MFG_TOKEN)
        return Buffer.concat([Buffer.from([8]), Buffer.alloc(8, 0xff)]);
      // NETWORK_INIT accepted; NETWORK_UP never comes
      return Buffer.alloc(4);
    });
    const rst = fake.host.reset.bind(fake.host);
    fake.host.reset = (timeoutMs?: number) => {
      resets++;
      return rst(timeoutMs);
    };
    const info = ncpInfo(fake.host, deadline()).catch((e: Error) => e);
    for (let i = 0; i < 100 && !fake.commands.some((c) => c.frameId === FrameId.NETWORK_INIT); i++)
      await new Promise((r) => setTimeout(r, 5));
    await new Promise((r) => setTimeout(r, 20));
    fake.host.interrupt("interrupted by SIGTERM");
    expect(((await info) as Error).message).toBe(
      "interrupted by SIGTERM (the NCP was reset afterwards: no network on the air)",
    );
    expect(resets).toBe(2);
  });

  it("stays within its time limit", async () => {
    const fake = new FakeNcp(() => undefined);
    fake.answerRst = false;
    const started = Date.now();
    await expect(parkNcp(fake.host, new Deadline(1000))).rejects.toThrow(
      /does not answer an ASH reset .*is this an EmberZNet NCP/,
    );
    expect(Date.now() - started).toBeLessThan(1500);
  });
});

describe("node tool operations against an EZSP v13 NCP (one-byte statuses)", () => {
  /** EmberZNet 7.4.x as the fake plays it: EmberStatus bytes, no LEAVE_NETWORK options byte. */
  function v13(hasNetwork: boolean) {
    let joined = hasNetwork;
    const fake: FakeNcp = new FakeNcp((c) => {
      switch (c.frameId) {
        case FrameId.VERSION:
          return versionAnswer(13, 0x7440);
        case FrameId.GET_VALUE:
          return Buffer.from([0x00, 7, 0x2c, 0x01, 7, 4, 4, 0, 0xaa]);
        case FrameId.GET_EUI64:
          return Buffer.from(FACTORY, "hex").reverse();
        case FrameId.GET_MFG_TOKEN:
          return Buffer.concat([Buffer.from([8]), Buffer.alloc(8, 0xff)]);
        case FrameId.SET_CONFIGURATION_VALUE:
          return Buffer.from([0x00]);
        case FrameId.NETWORK_INIT:
          if (!joined) return Buffer.from([0x93]);
          // the callback overtakes the response
          fake.sendCallback(FrameId.STACK_STATUS_HANDLER, Buffer.from([0x90]));
          return Buffer.from([0x00]);
        case FrameId.GET_NETWORK_PARAMETERS:
          return new ByteWriter()
            .u8(0x00)
            .u8(1)
            .bytes(Buffer.from("aabbccddeeff0011", "hex"))
            .u16(0x2b2b)
            .u8(3)
            .u8(20)
            .u8(0)
            .u16(0)
            .u8(0)
            .u32(1 << 20)
            .build();
        case FrameId.GET_NETWORK_KEY_INFO:
          return new ByteWriter().u32(0).u8(1).u8(0).u8(0).u8(0).u32(99_000).build();
        case FrameId.LEAVE_NETWORK:
          if (c.parameters.length !== 0) return Buffer.from([0x02]);
          joined = false;
          setTimeout(() => fake.sendCallback(FrameId.STACK_STATUS_HANDLER, Buffer.from([0x91])), 5);
          return Buffer.from([0x00]);
        case FrameId.TOKEN_FACTORY_RESET:
          // Firmware without the command refuses it (EzspStatus INVALID_COMMAND... as 0x58 frames).
          return { frameId: FrameId.INVALID_COMMAND, parameters: Buffer.from([0x58]) };
        default:
          return undefined;
      }
    });
    return fake;
  }

  it("info", async () => {
    const fake = v13(true);
    expect(await ncpInfo(fake.host, deadline())).toEqual({
      eui64: `0x${FACTORY}`,
      custom_eui64: null,
      ezsp_version: 13,
      stack_version: "7.4.4.0",
      network: {
        pan_id: 0x2b2b,
        extended_pan_id: "0xaabbccddeeff0011",
        channel: 20,
        nwk_frame_counter: 99_000,
        node_type: "coordinator",
      },
    });
  });

  it("wipe with and without a network, by leaving it when TOKEN_FACTORY_RESET is refused", async () => {
    const fake = v13(true);
    expect(await wipeNcp(fake.host, deadline())).toEqual({
      wiped: true,
      had_network: true,
      method: "leave-network",
    });
    expect(fake.commands.filter((c) => c.frameId === FrameId.LEAVE_NETWORK)).toHaveLength(1);
    expect(await wipeNcp(v13(false).host, deadline())).toEqual({
      wiped: true,
      had_network: false,
      method: "leave-network",
    });
  });
});

describe("EUI64 arguments", () => {
  it("takes 16 hex digits, 0x-prefixed or not, any case; refuses the blank and the null EUI64", () => {
    expect(parseEui64("0x8C65A3FFFE0000CC")).toBe("8c65a3fffe0000cc");
    expect(parseEui64("8c65a3fffe0000cc")).toBe("8c65a3fffe0000cc");
    for (const bad of [
      "",
      "0x",
      "8c65a3fffe0000c",
      "8c65a3fffe0000ccc",
      "8c:65:a3:ff:fe:00:00:cc",
      "ffffffffffffffff",
      "0000000000000000",
      "8c65a3fffe0000cg",
    ])
      expect(parseEui64(bad)).toBeUndefined();
  });

  it("names sl_status_t values in error messages", () => {
    expect(slStatusName(SlStatus.NOT_JOINED)).toBe("NOT_JOINED (0x0017)");
    expect(slStatusName(0x1234)).toBe("0x1234");
  });
});
