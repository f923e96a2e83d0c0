/**
 * The real zigbee2mqtt 2.14.1 (zigbee-herdsman 10.9.2) against simulated dongles on a pty, with a
 * private Mosquitto on loopback: every start-up path herdsman has (form, resume, restore, refuse),
 * backup and stop, the frame counter, a pulled stick, and an NVRAM copy to a second dongle.
 */
import { copyFileSync, existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Z2mNetwork } from "../helpers/z2m.js";
import { TEST_EPID as EPID, TEST_NETWORK as NETWORK, problems, Z2mHarness } from "../helpers/z2m-harness.js";
import { runZnpTool, znpToolsInstalled } from "../helpers/znp-tools.js";
import { SimulatorProcess } from "../lab/simulator/process.js";

const FPS = 20;

const h = new Z2mHarness({ prefix: "sim-z2m-" });

async function startSim(
  name: string,
  ieee: string,
  extra: { seedNvram?: string } = {},
): Promise<SimulatorProcess> {
  return h.track(
    await SimulatorProcess.start({ dir: h.dir, name, ieee, pty: true, framesPerSecond: FPS, ...extra }),
  );
}

interface BridgeInfo {
  coordinator: { ieee_address: string };
  network: { pan_id: number; channel: number };
}

interface OpenBackup {
  coordinator_ieee: string;
  pan_id: string;
  extended_pan_id: string;
  channel: number;
  network_key: { key: string; frame_counter: number };
  devices: Array<{ ieee_address: string; link_key?: { key: string; tx_counter: number } }>;
}

interface CoordinatorBackup {
  coordinator_ieee: string;
  extended_pan_id: string;
  network_key: { frame_counter: number };
}

const bridgeInfo = (since: number) => h.bridgeInfo<BridgeInfo>(since);
const readBackup = (data: string) => h.readBackup<CoordinatorBackup>(data);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

beforeAll(async () => {
  if (!znpToolsInstalled()) throw new Error("zigpy-znp is not installed: run scripts/setup.sh znp");
  await h.setup();
});

afterAll(() => h.teardown());

describe("zigbee2mqtt 2.14.1 against a simulated dongle", () => {
  let simA: SimulatorProcess;
  let dataA: string;

  it("forms a network on a blank dongle, goes online with the dongle's IEEE, backs up and stops cleanly", async () => {
    simA = await startSim("a", "00124b00000000a1");
    dataA = h.dataDir("data-a", simA.ptyPath!);
    const since = Date.now();
    const z2m = await h.z2mOnline(dataA, "form", "reset");
    expect(z2m.output).toContain("(stage-1) adapter is not configured / not commissioned");
    expect(z2m.output).toContain("determined startup strategy: startCommissioning");
    expect(z2m.output).toContain(`"type":"ZStack3x0"`);

    const info = await bridgeInfo(since);
    expect(info.coordinator.ieee_address).toBe("0x00124b00000000a1");
    expect(info.network).toMatchObject({ pan_id: 6754, channel: 15 });
    expect(readBackup(dataA)).toMatchObject({ coordinator_ieee: "00124b00000000a1", extended_pan_id: EPID });

    const status = await simA.status();
    expect(status).toMatchObject({
      state: "started",
      pan_id: 6754,
      extended_pan_id: EPID,
      channel: 15,
      configured: true,
      host_connected: true,
    });

    // the counter moves while zigbee2mqtt runs (background traffic at FPS frames per second)
    const before = (await simA.status()).nwk_frame_counter;
    await sleep(1500);
    const during = (await simA.status()).nwk_frame_counter;
    expect(during).toBeGreaterThan(before);

    await h.requestBackup("bridge/request/backup");
    expect(readBackup(dataA).network_key.frame_counter).toBeGreaterThanOrEqual(before);

    await h.stopZ2m(z2m, "form", simA);
    expect(z2m.output).toContain("Stopped zigbee-herdsman");
    // e.g. "Failed to disable join on stop" if the stop's AF/ZDO requests went unanswered
    expect(problems(z2m)).toEqual([]);
    // ... and stands still once it stopped: the chip stays started but no host talks to it
    const stopped = await simA.status();
    expect(stopped).toMatchObject({ state: "started", host_connected: false });
    await sleep(1200);
    expect((await simA.status()).nwk_frame_counter).toBe(stopped.nwk_frame_counter);
    expect(stopped.max_nwk_frame_counter).toBe(stopped.nwk_frame_counter);
    expect(readBackup(dataA).network_key.frame_counter).toBeLessThanOrEqual(stopped.nwk_frame_counter);

    // herdsman never sent a command the simulator does not implement
    expect((await simA.client.stats()).unknown_commands).toEqual([]);
  }, 120_000);

  it("resumes on restart, with the chip still running and after a power cycle", async () => {
    const z2m = await h.z2mOnline(dataA, "resume (chip running)", "resumed");
    expect(z2m.output).toContain("adapter is already running in coordinator mode");
    expect(z2m.output).not.toContain("registering endpoint");
    await h.stopZ2m(z2m, "resume (chip running)", simA);

    const counter = (await simA.status()).nwk_frame_counter;
    expect(await simA.client.powerCycle()).toMatchObject({ state: "hold", nwk_frame_counter: counter });
    const again = await h.z2mOnline(dataA, "resume (after power cycle)", "resumed");
    expect(again.output).toContain("adapter successfully started in coordinator mode");
    expect(again.output).toContain("registering endpoint '1'");
    expect(await simA.status()).toMatchObject({ state: "started", pan_id: 6754, extended_pan_id: EPID });
    await h.stopZ2m(again, "resume (after power cycle)", simA);
    expect(problems(z2m)).toEqual([]);
    expect(problems(again), h.brokerLog()).toEqual([]);
  }, 120_000);

  it("also runs over TCP; idle it sends nothing, and the counter follows the simulated traffic rate", async () => {
    h.configure(dataA, simA.herdsmanTcpPath);
    const z2m = await h.z2mOnline(dataA, "resume over TCP", "resumed");
    await z2m.waitForOutput("Zigbee2MQTT started!", 30_000);
    await sleep(1000);
    const framesBefore = (await simA.client.stats()).frames_in;
    await simA.client.setTraffic(0);
    const quiet = (await simA.status()).nwk_frame_counter;
    await sleep(3000);
    // spec phase (e): an idle zigbee2mqtt sends no MT frames at all
    expect((await simA.client.stats()).frames_in).toBe(framesBefore);
    expect((await simA.status()).nwk_frame_counter).toBe(quiet);
    await simA.client.setTraffic(FPS);
    await sleep(1000);
    expect((await simA.status()).nwk_frame_counter).toBeGreaterThan(quiet);
    await h.stopZ2m(z2m, "resume over TCP", simA);
    h.configure(dataA, simA.ptyPath!);
  }, 90_000);

  it("cannot start with the stick pulled, and resumes once it is back", async () => {
    await simA.client.unplug();
    expect(existsSync(simA.ptyPath!)).toBe(false);
    const since = Date.now();
    const z2m = h.startZ2m(dataA, "unplugged");
    const exit = await h.waitForExit(z2m);
    expect(exit.code).not.toBe(0);
    expect(z2m.output).toContain("Failed to start zigbee-herdsman");
    expect(h.wentOnlineSince(since)).toBe(false);

    await simA.client.replug();
    const back = await h.z2mOnline(dataA, "resume (after replug)", "resumed");
    await back.waitForOutput("Zigbee2MQTT started!", 30_000);

    // pulling the stick under a running zigbee2mqtt: the port dies and zigbee2mqtt stops
    await simA.client.unplug();
    const gone = await h.waitForExit(back);
    expect(gone.code).not.toBe(0);
    expect(back.output).toContain("Adapter disconnected, stopping");
    await simA.client.replug();
  }, 180_000);

  it("resumes the same network on a second dongle after an NVRAM copy (switchover in miniature)", async () => {
    // A sits in HOLD (it was just replugged), so its counter cannot move during the read. A chip
    // left started by a stopped zigbee2mqtt keeps counting while any host, the read included, is
    // connected: its copy then lags its max_nwk_frame_counter by a few frames.
    expect((await simA.status()).state).toBe("hold");
    const dump = join(h.dir, "a-nvram.json");
    expect((await runZnpTool("nvram_read", simA.ptyPath!, ["-o", dump])).code).toBe(0);
    const counterA = (await simA.status()).max_nwk_frame_counter;

    const simB = await startSim("b", "00124b00000000b2");
    expect((await runZnpTool("nvram_reset", simB.ptyPath!)).code).toBe(0);
    expect((await runZnpTool("nvram_write", simB.ptyPath!, ["-i", dump])).code).toBe(0);
    expect(await simB.status()).toMatchObject({ ieee: "00124b00000000a1", configured: true, state: "hold" });

    // same data dir, only the serial port differs per node
    const dataB = h.dataDir("data-b", simB.ptyPath!, NETWORK, dataA);
    const since = Date.now();
    const z2m = await h.z2mOnline(dataB, "resume on copied dongle", "resumed");
    const info = await bridgeInfo(since);
    expect(info.coordinator.ieee_address).toBe("0x00124b00000000a1");
    expect(info.network).toMatchObject({ pan_id: 6754, channel: 15 });
    const status = await simB.status();
    expect(status).toMatchObject({ state: "started", pan_id: 6754, extended_pan_id: EPID, channel: 15 });
    // a copy taken after a clean stop carries the exact counter: B goes on from A's value
    expect(status.nwk_frame_counter).toBeGreaterThanOrEqual(counterA);
    await h.stopZ2m(z2m, "resume on copied dongle");
  }, 120_000);

  let simC: SimulatorProcess;
  let dataC: string;

  it("restores a backup matching its configuration onto a blank dongle: IEEE taken over, counter +2500", async () => {
    simC = await startSim("c", "00124b00000000c3");
    dataC = h.dataDir("data-c", simC.ptyPath!);
    copyFileSync(join(dataA, "coordinator_backup.json"), join(dataC, "coordinator_backup.json"));
    const backup = readBackup(dataC);
    const z2m = await h.z2mOnline(dataC, "restore", "restored");
    expect(z2m.output).toContain("(stage-2) configuration matches backup");
    expect(z2m.output).toContain("determined startup strategy: restoreBackup");
    const status = await simC.status();
    expect(status).toMatchObject({
      ieee: "00124b00000000a1",
      hardware_ieee: "00124b00000000c3",
      state: "started",
      pan_id: 6754,
      extended_pan_id: EPID,
      channel: 15,
      configured: true,
    });
    expect(status.nwk_frame_counter).toBeGreaterThanOrEqual(backup.network_key.frame_counter + 2500);
    await h.stopZ2m(z2m, "restore");
    expect(problems(z2m)).toEqual([]);
    expect(readBackup(dataC).network_key.frame_counter).toBeGreaterThanOrEqual(
      backup.network_key.frame_counter + 2500,
    );
    expect(readBackup(dataC).coordinator_ieee).toBe("00124b00000000a1");
  }, 120_000);

  it("restores a real network with devices and link keys from a zigpy-znp backup (a ZHA migration)", async () => {
    // a dongle holding the real CC2652R's formed network, backed up with zigpy-znp's tool
    const source = await startSim("real", "00124b00000000d4", {
      seedNvram: "/work/shared/data/nvram/CC2652R-ZStack4.formed.json",
    });
    const zigpyBackup = join(h.dir, "zigpy-backup.json");
    expect((await runZnpTool("network_backup", source.ptyPath!, ["-o", zigpyBackup])).code).toBe(0);
    const backup = JSON.parse(readFileSync(zigpyBackup, "utf8")) as OpenBackup;
    const keyed = backup.devices.filter((d) => d.link_key);
    expect(keyed.length).toBeGreaterThan(0);

    const target = await startSim("target", "00124b00000000e5");
    const hexBytes = (h: string) => [...Buffer.from(h, "hex")];
    const network: Z2mNetwork = {
      panId: Number.parseInt(backup.pan_id, 16),
      extPanId: hexBytes(backup.extended_pan_id),
      channel: backup.channel,
      networkKey: hexBytes(backup.network_key.key),
    };
    const data = h.dataDir("data-real", target.ptyPath!, network);
    copyFileSync(zigpyBackup, join(data, "coordinator_backup.json"));
    const z2m = await h.z2mOnline(data, "restore (real network)", "restored");
    expect(await target.status()).toMatchObject({
      ieee: backup.coordinator_ieee,
      pan_id: network.panId,
      extended_pan_id: backup.extended_pan_id,
      channel: backup.channel,
    });
    await h.stopZ2m(z2m, "restore (real network)");
    expect(problems(z2m)).toEqual([]);

    // herdsman's next backup, read back from the tables it wrote into the simulated NV
    const after = readBackup(data) as unknown as OpenBackup;
    expect(after.network_key.frame_counter).toBeGreaterThanOrEqual(backup.network_key.frame_counter + 2500);
    for (const device of keyed) {
      const restored = after.devices.find((d) => d.ieee_address === device.ieee_address);
      expect(restored?.link_key?.key, device.ieee_address).toBe(device.link_key!.key);
      expect(restored?.link_key?.tx_counter).toBe(device.link_key!.tx_counter + 2500);
    }
  }, 120_000);

  it("refuses to start when the configuration differs from a dongle that matches the backup", async () => {
    h.configure(dataC, simC.ptyPath!, { ...NETWORK, panId: 6755 });
    const since = Date.now();
    const z2m = h.startZ2m(dataC, "mismatch");
    const exit = await h.waitForExit(z2m);
    h.timings.mismatch = Date.now() - since;
    expect(exit.code).not.toBe(0);
    expect(z2m.output).toContain("(stage-4) adapter state matches backup");
    expect(z2m.output).toContain("- PAN ID: configured=6755, adapter=6754");
    expect(z2m.output).toContain("configuration-adapter mismatch");
    expect(h.wentOnlineSince(since)).toBe(false);
    // nothing was written to the dongle
    expect(await simC.status()).toMatchObject({ pan_id: 6754, extended_pan_id: EPID, configured: true });
  }, 90_000);
});
