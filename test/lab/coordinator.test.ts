/**
 * The coordinator's identity moving between nodes the prototype's way, with the real zigpy-znp
 * tools and the real zigbee2mqtt on the lab's simulated dongles: read, clone, restore from
 * zigbee2mqtt's own backup, and a dongle that does not match the configuration.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import type { BridgeInfo } from "./host/mqtt.js";
import { Lab } from "./world.js";

/** Hex of a little-endian byte string (as nvram_read prints NV items), most significant byte first. */
function msbFirst(hex: string): string {
  return hex.match(/../g)!.reverse().join("");
}

interface NvramDump {
  LEGACY: Record<string, string>;
}

interface CoordinatorBackup {
  coordinator_ieee: string;
  pan_id: string;
  extended_pan_id: string;
  channel: number;
  network_key: { frame_counter: number };
}

describe("the coordinator moves between nodes with zigpy-znp and zigbee2mqtt", () => {
  let lab: Lab;
  /** What node1's zigbee2mqtt published about the network it formed at `up`. */
  let formed: BridgeInfo;

  beforeAll(async () => {
    lab = await Lab.attach(inject("labName"));
    await lab.stopZigbee2mqtt("node2");
    await lab.resetNode("node2");
    // node1 as `up` left it: online on the network it formed.
    if ((await lab.service("node1", "status")).code !== 0) {
      await lab.stopZigbee2mqtt("node1");
      await lab.startZigbee2mqtt("node1");
    }
    formed = (await lab.waitForZigbee2mqtt("node1")).info!;
  });

  afterAll(async () => {
    await lab.resetNode("node2");
    if ((await lab.service("node1", "status")).code !== 0) {
      await lab.stopZigbee2mqtt("node1");
      await lab.startZigbee2mqtt("node1");
    }
  });

  it("node1 formed the network its configuration.yaml describes, on its own dongle", async () => {
    const dongle = await lab.simulator("node1").status();
    expect(formed.coordinator?.ieee_address).toBe(`0x${lab.node("node1").ieee}`);
    expect(formed.coordinator?.ieee_address).toBe(`0x${dongle.ieee}`);
    expect(formed.network?.pan_id).toBe(lab.info.network.panId);
    expect(formed.network?.channel).toBe(lab.info.network.channel);
    expect(formed.network?.extended_pan_id).toBe(
      `0x${lab.info.network.extendedPanId.map((b) => b.toString(16).padStart(2, "0")).join("")}`,
    );
    expect(dongle.configured).toBe(true);
  });

  it("nvram_read on node1, with zigbee2mqtt stopped, returns the network zigbee2mqtt formed", async () => {
    await lab.stopZigbee2mqtt("node1");
    const read = await lab.znp("node1", "nvram_read", ["-o", "/home/zigbee/nvram.json"]);
    expect(read.code, read.stderr.slice(-2000)).toBe(0);
    const dump = JSON.parse(await lab.readFile("node1", "/home/zigbee/nvram.json")) as NvramDump;
    expect(dump.LEGACY.HAS_CONFIGURED_ZSTACK3).toBe("55");
    expect(`0x${msbFirst(dump.LEGACY.EXTADDR!)}`).toBe(formed.coordinator?.ieee_address);
    expect(Number.parseInt(msbFirst(dump.LEGACY.PANID!), 16)).toBe(formed.network?.pan_id);
    expect(`0x${msbFirst(dump.LEGACY.EXTENDED_PAN_ID!)}`).toBe(formed.network?.extended_pan_id);
    expect(Number.parseInt(msbFirst(dump.LEGACY.CHANLIST!), 16)).toBe(1 << formed.network!.channel!);
  });

  it("the dump written onto node2's blank dongle makes node2's zigbee2mqtt the same coordinator", async () => {
    expect((await lab.simulator("node2").status()).configured).toBe(false);
    await lab.writeFile(
      "node2",
      "/home/zigbee/nvram.json",
      await lab.readFile("node1", "/home/zigbee/nvram.json"),
      {
        user: "zigbee",
      },
    );
    const write = await lab.znp("node2", "nvram_write", ["-i", "/home/zigbee/nvram.json"]);
    expect(write.code, write.stderr.slice(-2000)).toBe(0);

    const bridge = await lab.startZigbee2mqtt("node2");
    expect(bridge.info?.config?.frontend?.host).toBe(lab.node("node2").address);
    expect(bridge.info?.coordinator?.ieee_address).toBe(formed.coordinator?.ieee_address);
    expect(bridge.info?.network).toEqual(formed.network);
    expect((await lab.simulator("node2").status()).ieee).toBe(lab.node("node1").ieee);
    await lab.stopZigbee2mqtt("node2");
  });

  it("a blank dongle and node1's coordinator_backup.json: zigbee2mqtt restores, with a higher frame counter", async () => {
    await lab.resetNode("node2");
    expect((await lab.simulator("node2").status()).configured).toBe(false);
    const backupText = await lab.readFile("node1", "/opt/zigbee2mqtt/data/coordinator_backup.json");
    const backup = JSON.parse(backupText) as CoordinatorBackup;
    await lab.writeFile("node2", "/opt/zigbee2mqtt/data/coordinator_backup.json", backupText, {
      user: "zigbee",
    });

    const bridge = await lab.startZigbee2mqtt("node2");
    expect(bridge.info?.config?.frontend?.host).toBe(lab.node("node2").address);
    expect(bridge.info?.coordinator?.ieee_address).toBe(formed.coordinator?.ieee_address);
    expect(bridge.info?.network).toEqual(formed.network);
    expect(await lab.zigbee2mqttLog("node2", 200)).toContain("started (restored)");
    const dongle = await lab.simulator("node2").status();
    expect(dongle.nwk_frame_counter).toBeGreaterThan(backup.network_key.frame_counter);
    await lab.stopZigbee2mqtt("node2");
  });

  it("a dongle that does not match configuration.yaml: zigbee2mqtt refuses to start, visibly", async () => {
    // node2's dongle and backup now hold the lab network; its configuration names another PAN ID.
    const config = lab.configuration("node2");
    const otherPan = ((lab.info.network.panId + 1) % 0xfff0) + 1;
    const mismatched = config.replace(/^( {2}pan_id: ).*$/m, `$1${otherPan}`);
    expect(mismatched).not.toBe(config);
    await lab.writeFile("node2", "/opt/zigbee2mqtt/data/configuration.yaml", mismatched, { user: "zigbee" });

    const started = await lab.service("node2", "start");
    expect(started.code).toBe(0); // OpenRC starts it in the background; the failure comes after
    await expect(lab.waitForZigbee2mqtt("node2", { timeout: 60_000 })).rejects.toThrow(/crashed/);
    const status = await lab.service("node2", "status");
    expect(status.code).toBe(32);
    expect(status.stdout).toContain("crashed");
    expect(await lab.zigbee2mqttLog("node2", 200)).toContain("configuration-adapter mismatch");
    // Nothing came online: the bridge is still offline since node2's last clean stop.
    expect((await lab.bridge()).state).toBe("offline");

    await lab.stopZigbee2mqtt("node2");
    expect((await lab.service("node2", "status")).code).toBe(3);
  });
});
