/**
 * The real zigbee2mqtt 2.14.1 (zigbee-herdsman 10.9.2, adapter `ember`) against simulated EFR32
 * EmberZNet NCP dongles on a pty, with a private Mosquitto on loopback: form, resume (also after a
 * power cycle and a host's reset), restore onto a blank dongle and onto one whose custom EUI64
 * token is already written, what herdsman does with a dongle holding another network, the frame
 * counter, a pulled stick, parking and wiping an NCP from the host side, and the realistic line.
 *
 * Where herdsman's ember adapter differs from what one might expect (it does not refuse a
 * mismatching dongle, never writes the custom EUI64 token, restores the counter without a margin),
 * the tests assert what it really does: docs/simulator-ember.md has the source references.
 */
import { existsSync, writeFileSync } from "node:fs";
import type { Socket } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FrameId, SlStatus } from "../../sidecar/coordinator/ember/constants.js";
import { ByteReader } from "../../sidecar/coordinator/ember/ezsp-frame.js";
import type { Z2mNetwork } from "../helpers/z2m.js";
import { TEST_EPID as EPID, TEST_NETWORK as NETWORK, problems, Z2mHarness } from "../helpers/z2m-harness.js";
import { EzspTestHost } from "../lab/simulator-ember/host.js";
import { EmberSimulatorProcess } from "../lab/simulator-ember/process.js";

const KEY = "0102030405060708090a0b0c0d0e0f10";
/** The network another zigbee2mqtt left on a dongle. */
const OTHER: Z2mNetwork = {
  panId: 0x2b2b,
  extPanId: [0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x00, 0x11],
  channel: 20,
  networkKey: [
    0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x2b, 0x2c, 0x2d, 0x2e, 0x2f, 0x30,
  ],
};
/** A configuration matching neither the dongle's network nor the backup. */
const THIRD: Z2mNetwork = {
  panId: 0x3c3c,
  extPanId: [0xc1, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7, 0xc8],
  channel: 25,
  networkKey: [
    0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x3b, 0x3c, 0x3d, 0x3e, 0x3f, 0x40,
  ],
};
const FPS = 20;

const EUI_A = "8c65a3fffe0000a1";
const EUI_B = "8c65a3fffe0000b2";
const EUI_C = "8c65a3fffe0000c3";
const CUSTOM_C = "8c65a3fffe0000cc";
const EUI_D = "8c65a3fffe0000d4";
const EUI_R = "8c65a3fffe0000e5";

const h = new Z2mHarness({ prefix: "sim-ember-z2m-", adapter: "ember" });

async function startSim(
  name: string,
  eui64: string,
  extra: { customEui64?: string; link?: "instant" | "realistic" } = {},
): Promise<EmberSimulatorProcess> {
  return h.track(
    await EmberSimulatorProcess.start({ dir: h.dir, name, eui64, pty: true, framesPerSecond: FPS, ...extra }),
  );
}

interface BridgeInfo {
  coordinator: { ieee_address: string; type: string };
  network: { pan_id: number; channel: number };
}

const bridgeInfo = (since: number) => h.bridgeInfo<BridgeInfo>(since);

interface Backup {
  coordinator_ieee: string;
  pan_id: string;
  extended_pan_id: string;
  channel: number;
  network_key: { key: string; frame_counter: number };
  metadata: { internal: { ezspVersion: number } };
}

const readBackup = (data: string) => h.readBackup<Backup>(data);

/** herdsman's ember backup writes the coordinator EUI64 least significant byte first. */
const reversed = (eui64: string) => Buffer.from(eui64, "hex").reverse().toString("hex");

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

beforeAll(() => h.setup());

afterAll(() => h.teardown());

describe("zigbee2mqtt 2.14.1 (ember) against a simulated EmberZNet NCP", () => {
  let simA: EmberSimulatorProcess;
  let dataA: string;

  it("forms a network on a blank dongle, goes online with its EUI64, backs up, stops cleanly; the NCP stays on the air", async () => {
    simA = await startSim("a", EUI_A);
    dataA = h.dataDir("data-a", simA.ptyPath!);
    const since = Date.now();
    const z2m = await h.z2mOnline(dataA, "form", "reset");
    expect(z2m.output).toContain("[INIT TC] Network init status=NOT_JOINED.");
    expect(z2m.output).toContain("[INIT TC] No valid backup found.");
    expect(z2m.output).toContain("[INIT TC] Forming from config.");
    expect(z2m.output).toContain("[INIT FORM] New network formed!");
    expect(z2m.output).toContain(`"type":"EmberZNet"`);

    const info = await bridgeInfo(since);
    expect(info.coordinator.ieee_address).toBe(`0x${EUI_A}`);
    expect(info.network).toMatchObject({ pan_id: 6754, channel: 15 });
    const backup = readBackup(dataA);
    expect(backup).toMatchObject({
      pan_id: "1a62",
      extended_pan_id: EPID,
      channel: 15,
      network_key: { key: KEY },
    });
    expect(backup.coordinator_ieee).toBe(reversed(EUI_A));
    expect(backup.metadata.internal.ezspVersion).toBe(14);

    expect(await simA.status()).toMatchObject({
      state: "up",
      network_up: true,
      eui64: EUI_A,
      custom_eui64_token: null,
      pan_id: 6754,
      extended_pan_id: EPID,
      channel: 15,
      host_connected: true,
    });

    // background traffic moves the counter, at the rate set_traffic gives
    const before = (await simA.status()).nwk_frame_counter;
    await sleep(1500);
    expect((await simA.status()).nwk_frame_counter).toBeGreaterThan(before);
    const quiet = (await simA.client.setTraffic(0)).nwk_frame_counter;
    const framesIn = (await simA.client.stats()).frames_in;
    await sleep(1000);
    expect((await simA.status()).nwk_frame_counter).toBe(quiet);
    // an idle zigbee2mqtt sends the NCP nothing (herdsman's counters watchdog runs hourly)
    expect((await simA.client.stats()).frames_in).toBe(framesIn);
    await simA.client.setTraffic(FPS);

    await h.requestBackup("bridge/request/backup");
    expect(readBackup(dataA).network_key.frame_counter).toBeGreaterThanOrEqual(quiet);

    await h.stopZ2m(z2m, "form", simA);
    expect(z2m.output).toContain("Stopped zigbee-herdsman");
    expect(problems(z2m)).toEqual([]);

    // herdsman's stop closes the port without resetting the NCP or leaving: the network stays up
    // and keeps counting with nobody connected.
    const stopped = await simA.status();
    expect(stopped).toMatchObject({ state: "up", network_up: true, host_connected: false });
    await sleep(1200);
    expect((await simA.status()).nwk_frame_counter).toBeGreaterThan(stopped.nwk_frame_counter);
    expect(readBackup(dataA).network_key.frame_counter).toBeLessThanOrEqual(stopped.nwk_frame_counter);

    const stats = await simA.client.stats();
    expect(stats.unknown_frame_ids).toEqual([]);
    expect(stats.frames_in).toBeGreaterThan(40);
  }, 120_000);

  it("resumes on restart (herdsman resets the NCP, networkInit brings the network back), also after a power cycle", async () => {
    const resetsBefore = (await simA.client.stats()).resets;
    const counterBefore = (await simA.status()).nwk_frame_counter;
    const z2m = await h.z2mOnline(dataA, "resume", "resumed");
    expect(z2m.output).toContain("[INIT TC] Network init status=OK.");
    expect(z2m.output).toContain("[INIT TC] Adapter network matches config.");
    expect((await simA.client.stats()).resets).toBe(resetsBefore + 1);
    expect((await simA.status()).nwk_frame_counter).toBeGreaterThanOrEqual(counterBefore);
    await h.stopZ2m(z2m, "resume", simA);
    expect(problems(z2m)).toEqual([]);

    // a power cycle: RAM lost, tokens kept; the NCP firmware does not start the network on its own
    const cycled = await simA.client.powerCycle();
    expect(cycled).toMatchObject({ state: "down", network_up: false, configured: true, pan_id: 6754 });
    await sleep(1000);
    expect((await simA.status()).nwk_frame_counter).toBe(cycled.nwk_frame_counter);

    const again = await h.z2mOnline(dataA, "resume after power cycle", "resumed");
    expect(await simA.status()).toMatchObject({
      state: "up",
      eui64: EUI_A,
      pan_id: 6754,
      extended_pan_id: EPID,
    });
    expect((await simA.status()).nwk_frame_counter).toBeGreaterThanOrEqual(cycled.nwk_frame_counter);
    await h.stopZ2m(again, "resume after power cycle", simA);
    expect(problems(again)).toEqual([]);

    // the same over TCP (herdsman's tcp:// path, as for network-attached adapters)
    h.configure(dataA, simA.herdsmanTcpPath);
    const overTcp = await h.z2mOnline(dataA, "resume over TCP", "resumed");
    expect(overTcp.output).toContain("Socket ready");
    await h.stopZ2m(overTcp, "resume over TCP", simA);
    expect(problems(overTcp)).toEqual([]);
    h.configure(dataA, simA.ptyPath!);
  }, 120_000);

  it("parks: an ASH RST from any host silences the NCP until the next networkInit; a pulled stick stops zigbee2mqtt", async () => {
    expect((await simA.status()).network_up).toBe(true);
    const { host, socket } = await EzspTestHost.connectTcp(simA.herdsmanTcpPath);
    try {
      expect(await host.reset()).toBe(0x0b);
    } finally {
      socket.destroy();
    }
    await simA.waitForNoHost();
    const parked = await simA.status();
    expect(parked).toMatchObject({ state: "down", network_up: false, configured: true });
    await sleep(1000);
    expect((await simA.status()).nwk_frame_counter).toBe(parked.nwk_frame_counter);

    const z2m = await h.z2mOnline(dataA, "resume after park", "resumed");
    expect((await simA.status()).network_up).toBe(true);
    // the stick pulled under a running zigbee2mqtt: the port dies, the adapter reports it disconnected
    await simA.client.unplug();
    expect(existsSync(simA.ptyPath!)).toBe(false);
    const gone = await h.waitForExit(z2m);
    expect(gone.code).not.toBe(0);
    expect(z2m.output).toContain("Adapter disconnected, stopping");
    const back = await simA.client.replug();
    expect(back).toMatchObject({ state: "down", network_up: false, configured: true });
  }, 120_000);

  it("restores the backup onto a blank dongle: same network, the dongle's own EUI64, the backup's counter with no margin", async () => {
    const simB = await startSim("b", EUI_B);
    const dataB = h.dataDir("data-b", simB.ptyPath!, NETWORK, dataA);
    const backup = readBackup(dataB);
    const since = Date.now();
    const z2m = await h.z2mOnline(dataB, "restore", "restored");
    expect(z2m.output).toContain("[INIT TC] Network init status=NOT_JOINED.");
    expect(z2m.output).toContain("[INIT TC] Forming from backup.");
    // the database still names A's EUI64 for the coordinator: herdsman renames it
    expect(z2m.output).toContain(`Coordinator address changed, updating to '0x${EUI_B}'`);
    const status = await simB.status();
    expect(status).toMatchObject({
      state: "up",
      eui64: EUI_B,
      custom_eui64_token: null,
      pan_id: 6754,
      extended_pan_id: EPID,
      channel: 15,
      host_set_nwk_frame_counter: backup.network_key.frame_counter,
    });
    expect(status.nwk_frame_counter).toBeGreaterThanOrEqual(backup.network_key.frame_counter);
    const info = await bridgeInfo(since);
    expect(info.coordinator.ieee_address).toBe(`0x${EUI_B}`);
    // herdsman neither reads nor writes the manufacturing tokens
    const stats = await simB.client.stats();
    expect(stats.commands.SET_MFG_TOKEN).toBeUndefined();
    expect(stats.commands.GET_MFG_TOKEN).toBeUndefined();
    expect(stats.unknown_frame_ids).toEqual([]);

    await h.stopZ2m(z2m, "restore", simB);
    expect(problems(z2m)).toEqual([]);
    const after = readBackup(dataB);
    expect(after).toMatchObject({
      pan_id: "1a62",
      extended_pan_id: EPID,
      channel: 15,
      network_key: { key: KEY },
    });
    expect(after.coordinator_ieee).toBe(reversed(EUI_B));
    // the old dongle kept counting after the backup was taken: the restored one starts below it
    expect((await simA.status()).max_nwk_frame_counter).toBeGreaterThan(backup.network_key.frame_counter);
  }, 120_000);

  it("a dongle whose custom EUI64 token is already written: herdsman restores anyway and the network takes that EUI64", async () => {
    const simC = await startSim("c", EUI_C, { customEui64: CUSTOM_C });
    expect(await simC.status()).toMatchObject({
      eui64: CUSTOM_C,
      factory_eui64: EUI_C,
      custom_eui64_token: CUSTOM_C,
    });
    // the token is one-time: a flasher (or the control socket) cannot write A's EUI64 over it
    await expect(simC.client.writeCustomEui64(EUI_A)).rejects.toThrow(/already written/);
    const dataC = h.dataDir("data-c", simC.ptyPath!, NETWORK, dataA);
    const since = Date.now();
    const z2m = await h.z2mOnline(dataC, "restore onto written token", "restored");
    expect(z2m.output).toContain(`Coordinator address changed, updating to '0x${CUSTOM_C}'`);
    expect((await bridgeInfo(since)).coordinator.ieee_address).toBe(`0x${CUSTOM_C}`);
    expect(await simC.status()).toMatchObject({
      state: "up",
      eui64: CUSTOM_C,
      custom_eui64_token: CUSTOM_C,
      pan_id: 6754,
    });
    await h.stopZ2m(z2m, "restore onto written token", simC);
    expect(problems(z2m)).toEqual([]);
    expect(readBackup(dataC).coordinator_ieee).toBe(reversed(CUSTOM_C));
    expect((await simC.client.stats()).unknown_frame_ids).toEqual([]);
  }, 120_000);

  let simD: EmberSimulatorProcess;

  it("a dongle holding another network, with a configuration and a backup matching neither: herdsman does not refuse, it leaves that network and forms the configured one", async () => {
    simD = await startSim("d", EUI_D);
    const dataOther = h.dataDir("data-d-other", simD.ptyPath!, OTHER);
    const first = await h.z2mOnline(dataOther, "form other network", "reset");
    await h.stopZ2m(first, "form other network", simD);
    await sleep(500);
    const holding = await simD.status();
    expect(holding).toMatchObject({ state: "up", pan_id: OTHER.panId, channel: 20 });
    expect(holding.nwk_frame_counter).toBeGreaterThan(0);

    // configuration: THIRD; backup (and database): A's network; dongle: OTHER
    const dataThird = h.dataDir("data-d-third", simD.ptyPath!, THIRD, dataA);
    const backupBefore = readBackup(dataThird);
    expect(backupBefore.pan_id).toBe("1a62");
    const z2m = await h.z2mOnline(dataThird, "mismatch", "reset");
    expect(z2m.output).toContain("[INIT TC] Adapter network does not match config. Leaving network...");
    expect(z2m.output).toContain("[INIT TC] Config does not match backup.");
    expect(z2m.output).toContain("[INIT TC] Forming from config.");
    const formed = await simD.status();
    expect(formed).toMatchObject({
      state: "up",
      eui64: EUI_D,
      pan_id: THIRD.panId,
      channel: 25,
      extended_pan_id: "c1c2c3c4c5c6c7c8",
    });
    // forming from the configuration resets the counter: the same EUI64 now sends lower counters
    expect(formed.nwk_frame_counter).toBeLessThan(holding.nwk_frame_counter);
    await h.stopZ2m(z2m, "mismatch", simD);
    expect(problems(z2m)).toEqual([]);
    // the backup of A's network was overwritten; the database was cleared after a copy
    expect(readBackup(dataThird)).toMatchObject({ pan_id: "3c3c", channel: 25 });
    expect(existsSync(join(dataThird, "database.db.backup"))).toBe(true);
  }, 180_000);

  it("configuration and backup matching each other but not the dongle: herdsman leaves the dongle's network and restores the backup", async () => {
    const dataE = h.dataDir("data-e", simD.ptyPath!, NETWORK, dataA);
    const z2m = await h.z2mOnline(dataE, "overwrite with backup", "restored");
    expect(z2m.output).toContain("[INIT TC] Adapter network does not match config. Leaving network...");
    expect(z2m.output).toContain("[INIT TC] Forming from backup.");
    expect(await simD.status()).toMatchObject({
      state: "up",
      eui64: EUI_D,
      pan_id: 6754,
      extended_pan_id: EPID,
      channel: 15,
    });
    await h.stopZ2m(z2m, "overwrite with backup", simD);
    expect(problems(z2m)).toEqual([]);
    expect((await simD.client.stats()).unknown_frame_ids).toEqual([]);
  }, 120_000);

  it("wipes from the host side: RST, VERSION, networkInit, leaveNetwork; zigbee2mqtt then forms anew", async () => {
    expect((await simD.status()).network_up).toBe(true);
    let socket: Socket | undefined;
    try {
      const connected = await EzspTestHost.connectTcp(simD.herdsmanTcpPath);
      socket = connected.socket;
      const host = connected.host;
      expect(await host.start()).toBe(14);
      let since = host.received.length;
      expect(await host.statusOf(FrameId.NETWORK_INIT, Buffer.from([0, 0]))).toBe(SlStatus.OK);
      const up = await host.callback(FrameId.STACK_STATUS_HANDLER, 5000, since);
      expect(new ByteReader(up.parameters).u32()).toBe(SlStatus.NETWORK_UP);
      since = host.received.length;
      expect(await host.statusOf(FrameId.LEAVE_NETWORK, Buffer.from([0]))).toBe(SlStatus.OK);
      const down = await host.callback(FrameId.STACK_STATUS_HANDLER, 5000, since);
      expect(new ByteReader(down.parameters).u32()).toBe(SlStatus.NETWORK_DOWN);
    } finally {
      socket?.destroy();
    }
    await simD.waitForNoHost();
    const wiped = await simD.status();
    expect(wiped).toMatchObject({ state: "no_network", network_up: false, configured: false, eui64: EUI_D });
    const dataF = h.dataDir("data-f", simD.ptyPath!, NETWORK);
    const z2m = await h.z2mOnline(dataF, "form after wipe", "reset");
    await h.stopZ2m(z2m, "form after wipe", simD);
    expect(problems(z2m)).toEqual([]);
  }, 120_000);

  it("refuses only a backup file that is not EmberZNet's, and only after leaving the dongle's network when it did not match", async () => {
    // what herdsman's zstack adapter writes: no stack_specific.ezsp, no metadata.internal.ezspVersion
    const zstackBackup = {
      metadata: {
        format: "zigpy/open-coordinator-backup",
        version: 1,
        source: "zigbee-herdsman@10.9.2",
        internal: { date: "2026-01-01T00:00:00.000Z", znpVersion: 2 },
      },
      stack_specific: { zstack: { tclk_seed: "00112233445566778899aabbccddeeff" } },
      coordinator_ieee: "00124b00000000a1",
      pan_id: "1a62",
      extended_pan_id: EPID,
      nwk_update_id: 0,
      security_level: 5,
      channel: 15,
      channel_mask: [15],
      network_key: { key: KEY, sequence_number: 0, frame_counter: 1000 },
      devices: [],
    };
    // after "form after wipe" the dongle runs A's configured network on its own
    expect(await simD.status()).toMatchObject({ state: "up", pan_id: 6754 });

    // the dongle matches the configuration: herdsman brings its network up, then throws on the file
    const matching = h.dataDir("data-g", simD.ptyPath!, NETWORK);
    writeFileSync(join(matching, "coordinator_backup.json"), JSON.stringify(zstackBackup));
    const first = h.startZ2m(matching, "zstack backup, matching dongle");
    const firstExit = await h.waitForExit(first);
    expect(firstExit.code).not.toBe(0);
    expect(first.output).toContain("[BACKUP] Current backup file is not for EmberZNet stack.");
    expect(first.output).not.toContain("Leaving network");
    await simD.waitForNoHost();
    expect(await simD.status()).toMatchObject({ state: "up", pan_id: 6754, configured: true });

    // the dongle does not match: herdsman leaves its network first, then throws on the file
    const mismatching = h.dataDir("data-h", simD.ptyPath!, OTHER);
    writeFileSync(join(mismatching, "coordinator_backup.json"), JSON.stringify(zstackBackup));
    const second = h.startZ2m(mismatching, "zstack backup, mismatching dongle");
    const secondExit = await h.waitForExit(second);
    expect(secondExit.code).not.toBe(0);
    expect(second.output).toContain("[INIT TC] Adapter network does not match config. Leaving network...");
    expect(second.output).toContain("[BACKUP] Current backup file is not for EmberZNet stack.");
    await simD.waitForNoHost();
    expect(await simD.status()).toMatchObject({ state: "no_network", configured: false });
  }, 120_000);

  it("runs over the realistic serial line (115200 baud 8N1, NCP latency, token writes)", async () => {
    const simR = await startSim("r", EUI_R, { link: "realistic" });
    expect((await simR.status()).link).toMatchObject({ mode: "realistic", baud: 115200 });
    const dataR = h.dataDir("data-r", simR.ptyPath!);
    const z2m = await h.z2mOnline(dataR, "form (realistic line)", "reset");
    await h.requestBackup("bridge/request/backup (realistic line)");
    await h.stopZ2m(z2m, "form (realistic line)", simR);
    expect(problems(z2m)).toEqual([]);
    const stats = await simR.client.stats();
    expect(stats.unknown_frame_ids).toEqual([]);
    expect(stats.link.sessions).toBe(1);
    expect(stats.link.deliveries).toBeGreaterThan(100);
    expect(Math.abs(stats.link.mean_lateness_ms)).toBeLessThan(2);
    expect(stats.ash.retransmitted).toBe(0);
  }, 120_000);
});
