import { afterEach, describe, expect, it } from "vitest";
import { FrameId, MfgToken, SlStatus } from "../../../sidecar/coordinator/ember/constants.js";
import { ByteReader, ByteWriter } from "../../../sidecar/coordinator/ember/ezsp-frame.js";
import { EzspTestHost } from "../../lab/simulator-ember/host.js";
import { EmberNcp, type HostLink } from "../../lab/simulator-ember/ncp.js";
import { blankTokens, type Tokens } from "../../lab/simulator-ember/state-file.js";

const FACTORY = "8c65a3fffe0000a1";
const KEY = "0102030405060708090a0b0c0d0e0f10";
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const devices: EmberNcp[] = [];
afterEach(() => {
  for (const d of devices.splice(0)) d.powerOff();
});

/** An NCP and an EZSP host wired together in process (bytes cross asynchronously, like a socket). */
function rig(options: { tokens?: Tokens; fps?: number } = {}) {
  const ncp = new EmberNcp({
    tokens: options.tokens ?? blankTokens(),
    factoryEui64: FACTORY,
    maxNwkFrameCounter: 0,
    framesPerSecond: options.fps ?? 0,
    resetDelayMs: 5,
    stepDelayMs: 5,
    counterTickMs: 20,
  });
  devices.push(ncp);
  ncp.powerOn();
  let host: EzspTestHost;
  const link: HostLink = {
    label: "test",
    write: (bytes) => setImmediate(() => host.receive(bytes)),
    close: () => {},
  };
  host = new EzspTestHost((bytes) => setImmediate(() => ncp.receive(link, bytes)));
  expect(ncp.attachHost(link)).toBe(true);
  return { ncp, host, link };
}

/** What herdsman's formNetwork sends, from setInitialSecurityState to the NETWORK_UP callback. */
async function form(host: EzspTestHost, options: { counter?: number } = {}) {
  if (options.counter !== undefined) {
    const value = new ByteWriter().u32(options.counter).build();
    expect(await host.statusOf(FrameId.SET_VALUE, Buffer.concat([Buffer.from([35, 4]), value]))).toBe(
      SlStatus.OK,
    );
  }
  const bitmask = 0x0004 | 0x0100 | 0x0200 | 0x0084 | 0x0800 | (options.counter !== undefined ? 0x1000 : 0);
  const security = new ByteWriter()
    .u16(bitmask)
    .bytes(Buffer.alloc(16, 0x5a))
    .bytes(Buffer.from(KEY, "hex"))
    .u8(0)
    .eui64("0000000000000000");
  expect(await host.statusOf(FrameId.SET_INITIAL_SECURITY_STATE, security.build())).toBe(SlStatus.OK);
  const since = host.received.length;
  const params = new ByteWriter()
    .bytes([0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88])
    .u16(0x1a62)
    .u8(5)
    .u8(15)
    .u8(0)
    .u16(0)
    .u8(0)
    .u32(0x07fff800);
  expect(await host.statusOf(FrameId.FORM_NETWORK, params.build())).toBe(SlStatus.OK);
  const up = await host.callback(FrameId.STACK_STATUS_HANDLER, 2000, since);
  expect(new ByteReader(up.parameters).u32()).toBe(SlStatus.NETWORK_UP);
}

describe("the simulated EmberZNet NCP", () => {
  it("resets on RST, answers the legacy VERSION with its own version, then speaks the extended format", async () => {
    const { host, ncp } = rig();
    expect(await host.reset()).toBe(0x0b);
    const v = await host.command(FrameId.VERSION, Buffer.from([0x13]), { legacy: true });
    expect(v.parameters.toString("hex")).toBe("0e022080");
    await host.command(FrameId.VERSION, Buffer.from([0x0e]));
    const info = await host.command(FrameId.GET_VALUE, Buffer.from([17]));
    expect(info.parameters.toString("hex")).toBe("00000000" + "07" + "0000080002" + "00aa");
    expect(ncp.getStats().unknown_frame_ids).toEqual([]);
  });

  it("refuses commands before VERSION, and unknown frame ids (recorded in stats)", async () => {
    const { host, ncp } = rig();
    await host.reset();
    const early = await host.command(FrameId.GET_EUI64);
    expect(early.frameId).toBe(FrameId.INVALID_COMMAND);
    expect(early.parameters.toString("hex")).toBe("30");
    await host.start();
    const unknown = await host.command(0x0abc);
    expect(unknown.frameId).toBe(FrameId.INVALID_COMMAND);
    expect(unknown.parameters.toString("hex")).toBe("31");
    expect(ncp.getStats().unknown_frame_ids).toEqual(["0x0abc"]);
  });

  it("forms a network (NOT_JOINED before), with the counter reset to 0 by setInitialSecurityState", async () => {
    const tokens = blankTokens();
    tokens.nwkFrameCounter = 777;
    const { host, ncp } = rig({ tokens });
    await host.start();
    expect(await host.statusOf(FrameId.NETWORK_INIT, Buffer.from([3, 0]))).toBe(SlStatus.NOT_JOINED);
    await form(host);
    const p = new ByteReader((await host.command(FrameId.GET_NETWORK_PARAMETERS)).parameters);
    expect([p.u32(), p.u8(), p.bytes(8).toString("hex"), p.u16(), p.u8(), p.u8()]).toEqual([
      SlStatus.OK,
      1,
      "1122334455667788",
      0x1a62,
      5,
      15,
    ]);
    expect(ncp.status(false)).toMatchObject({
      state: "up",
      network_up: true,
      nwk_frame_counter: 0,
      pan_id: 0x1a62,
    });
    const key = new ByteReader(
      (await host.command(FrameId.EXPORT_KEY, Buffer.from(`01000000${"00".repeat(8)}000000000000`, "hex")))
        .parameters,
    );
    expect([key.u32(), key.bytes(16).toString("hex")]).toEqual([SlStatus.OK, KEY]);
  });

  it("keeps the counter a host sets before a restore (NO_FRAME_COUNTER_RESET), exactly", async () => {
    const { host, ncp } = rig();
    await host.start();
    await form(host, { counter: 123456 });
    expect(ncp.status(false)).toMatchObject({
      nwk_frame_counter: 123456,
      host_set_nwk_frame_counter: 123456,
    });
    const info = new ByteReader((await host.command(FrameId.GET_NETWORK_KEY_INFO)).parameters);
    expect([info.u32(), info.u8(), info.u8(), info.u8(), info.u8(), info.u32()]).toEqual([
      0, 1, 0, 0, 0, 123456,
    ]);
  });

  it("loses the running network on RST; networkInit brings it back from the tokens", async () => {
    const { host, ncp } = rig();
    await host.start();
    await form(host);
    await host.start();
    expect(ncp.status(false)).toMatchObject({ state: "down", network_up: false, configured: true });
    expect((await host.command(FrameId.NETWORK_STATE)).parameters[0]).toBe(0);
    const since = host.received.length;
    expect(await host.statusOf(FrameId.NETWORK_INIT, Buffer.from([3, 0]))).toBe(SlStatus.OK);
    await host.callback(FrameId.STACK_STATUS_HANDLER, 2000, since);
    expect(ncp.status(false)).toMatchObject({
      state: "up",
      pan_id: 0x1a62,
      extended_pan_id: "1122334455667788",
    });
    expect(await host.statusOf(FrameId.NETWORK_INIT, Buffer.from([3, 0]))).toBe(SlStatus.INVALID_STATE);
  });

  it("keeps the network up and counting when the host goes away (a UART has no disconnect)", async () => {
    const { host, ncp, link } = rig({ fps: 1000 });
    await host.start();
    await form(host);
    ncp.detachHost(link);
    const before = ncp.status(false).nwk_frame_counter;
    await sleep(150);
    const after = ncp.status(false);
    expect(after).toMatchObject({ state: "up", host_connected: false });
    expect(after.nwk_frame_counter).toBeGreaterThan(before + 50);
  });

  it("leaves the network: NETWORK_DOWN, network tokens erased, the counter kept", async () => {
    const { host, ncp } = rig();
    await host.start();
    await form(host, { counter: 42 });
    const since = host.received.length;
    expect(await host.statusOf(FrameId.LEAVE_NETWORK, Buffer.from([0]))).toBe(SlStatus.OK);
    const down = await host.callback(FrameId.STACK_STATUS_HANDLER, 2000, since);
    expect(new ByteReader(down.parameters).u32()).toBe(SlStatus.NETWORK_DOWN);
    expect(ncp.status(false)).toMatchObject({
      state: "no_network",
      configured: false,
      nwk_frame_counter: 42,
    });
  });

  it("writes MFG_CUSTOM_EUI_64 once: used from the next boot, a second write is inhibited", async () => {
    const { host, ncp } = rig();
    await host.start();
    const eui = (hex: string) =>
      new ByteWriter().u8(MfgToken.CUSTOM_EUI_64).payload(Buffer.from(hex, "hex").reverse()).build();
    const read = async () => new ByteReader((await host.command(FrameId.GET_EUI64)).parameters).eui64();
    const token = async () =>
      (await host.command(FrameId.GET_MFG_TOKEN, Buffer.from([MfgToken.CUSTOM_EUI_64]))).parameters.toString(
        "hex",
      );
    expect(await token()).toBe("08ffffffffffffffff");
    expect(await host.statusOf(FrameId.SET_MFG_TOKEN, eui("00124b0000aabbcc"))).toBe(SlStatus.OK);
    expect(await read()).toBe(FACTORY);
    expect(await host.statusOf(FrameId.SET_MFG_TOKEN, eui("00124b0000ddeeff"))).toBe(
      SlStatus.FLASH_WRITE_INHIBITED,
    );
    expect(await host.statusOf(FrameId.SET_MFG_TOKEN, eui("00124b0000aabbcc"))).toBe(
      SlStatus.FLASH_WRITE_INHIBITED,
    );
    await host.start();
    expect(await read()).toBe("00124b0000aabbcc");
    expect(await token()).toBe("08ccbbaa00004b1200");
    expect(ncp.status(false)).toMatchObject({
      eui64: "00124b0000aabbcc",
      factory_eui64: FACTORY,
      custom_eui64_token: "00124b0000aabbcc",
    });
  });

  it("answers ZDO requests to itself (herdsman interviews its coordinator): active endpoints", async () => {
    const { host } = rig();
    await host.start();
    const ep = new ByteWriter()
      .u8(1)
      .u16(0x0104)
      .u16(0x0065)
      .u8(1)
      .u8(1)
      .u8(1)
      .u16(0x0000)
      .u16(0x0006)
      .build();
    expect(await host.statusOf(FrameId.ADD_ENDPOINT, ep)).toBe(SlStatus.OK);
    expect(await host.statusOf(FrameId.ADD_ENDPOINT, ep)).toBe(SlStatus.INVALID_STATE);
    await form(host);
    const since = host.received.length;
    const aps = new ByteWriter().u16(0).u16(0x0005).u8(0).u8(0).u16(0x1140).u16(0).u8(0);
    const send = Buffer.concat([
      new ByteWriter().u8(0).u16(0x0000).build(),
      aps.build(),
      new ByteWriter()
        .u16(1)
        .payload(Buffer.from([1, 0, 0]))
        .build(),
    ]);
    const sent = new ByteReader((await host.command(FrameId.SEND_UNICAST, send)).parameters);
    expect(sent.u32()).toBe(SlStatus.OK);
    const incoming = await host.callback(FrameId.INCOMING_MESSAGE_HANDLER, 2000, since);
    const r = new ByteReader(incoming.parameters);
    r.u8();
    expect([r.u16(), r.u16()]).toEqual([0, 0x8005]);
    r.bytes(7 + 18); // rest of the APS frame, sl_zigbee_rx_packet_info_t
    expect(r.payload().toString("hex")).toBe("01" + "00" + "0000" + "01" + "01");
    expect((await host.callback(FrameId.MESSAGE_SENT_HANDLER, 2000, since)).parameters.readUInt32LE(0)).toBe(
      SlStatus.OK,
    );
  });

  it("fails delivery of unicasts to other nodes (there are none) after the APS retries", async () => {
    const { host } = rig();
    await host.start();
    await form(host);
    const since = host.received.length;
    const aps = new ByteWriter().u16(0x0104).u16(0x0006).u8(1).u8(1).u16(0x1140).u16(0).u8(0).build();
    const send = Buffer.concat([
      new ByteWriter().u8(0).u16(0x1234).build(),
      aps,
      new ByteWriter()
        .u16(2)
        .payload(Buffer.from([0, 1, 2]))
        .build(),
    ]);
    await host.command(FrameId.SEND_UNICAST, send);
    const done = await host.callback(FrameId.MESSAGE_SENT_HANDLER, 3000, since);
    expect(done.parameters.readUInt32LE(0)).toBe(SlStatus.ZIGBEE_DELIVERY_FAILED);
  });
});
