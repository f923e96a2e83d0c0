/**
 * The realistic serial link with the real programs: zigpy-znp's tools and zigbee2mqtt on a node
 * whose dongle answers at 115200 baud 8N1 with a chip latency and flash costs. What is asserted is
 * that everything still works and that the link carried it; how long it takes is the bench's job.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { REALISTIC_LINK } from "./simulator/link.js";
import { Lab } from "./world.js";

interface NvramDump {
  LEGACY: Record<string, string>;
  [table: string]: Record<string, string>;
}

describe("a dongle on the realistic serial link", () => {
  let lab: Lab;
  /** node1 online as `up` left it (a crashed service is stopped first: OpenRC only warns on start). */
  const node1Online = async () => {
    if ((await lab.service("node1", "status")).code === 0) return;
    await lab.stopZigbee2mqtt("node1");
    await lab.startZigbee2mqtt("node1");
  };

  beforeAll(async () => {
    lab = await Lab.attach(inject("labName"));
    await lab.resetNode("node2");
    await node1Online();
    await lab.setLink("realistic", ["node2"]);
  });

  afterAll(async () => {
    await lab.setLink("instant", ["node2"]);
    await lab.resetNode("node2");
    await node1Online();
  });

  it("is set per dongle, with the default profile, and only the one asked for", async () => {
    const node2 = await lab.simulator("node2").status();
    expect(node2.link).toEqual({
      mode: "realistic",
      baud: REALISTIC_LINK.baud,
      bits_per_byte: 10,
      latency_ms: REALISTIC_LINK.requestLatencyMs,
      nv_write_ms: REALISTIC_LINK.nvWriteMs,
      nv_delete_ms: REALISTIC_LINK.nvDeleteMs,
    });
    expect((await lab.simulator("node1").status()).link).toEqual({ mode: "instant" });
    // lab.json records a link for every node only
    expect(lab.refresh().link ?? "instant").toBe("instant");
    const status = await lab.status();
    expect(status.hosts.find((h) => h.host === "node2")?.services.dongle).toMatch(/link realistic/);
  });

  it("zigpy-znp's nvram_read through sudo and the pty returns exactly the dongle's NV, over the timed line", async () => {
    const before = await lab.simulator("node2").stats();
    const read = await lab.znp("node2", "nvram_read", ["-o", "/home/zigbee/link-nvram.json"]);
    expect(read.code, read.stderr.slice(-2000)).toBe(0);
    const dump = JSON.parse(await lab.readFile("node2", "/home/zigbee/link-nvram.json")) as NvramDump;
    expect(dump).toEqual(await lab.simulator("node2").nvram());
    const after = await lab.simulator("node2").stats();
    expect(after.link.sessions).toBe(before.link.sessions + 1);
    // every request and every reply went through the line: at least one delivery each way per frame
    const frames = after.frames_in - before.frames_in + (after.frames_out - before.frames_out);
    expect(frames).toBeGreaterThan(500);
    expect(after.link.deliveries - before.link.deliveries).toBeGreaterThanOrEqual(frames);
  });

  it("node1's formed NVRAM written over it makes node2's zigbee2mqtt, also on the timed line, the same coordinator", async () => {
    await lab.stopZigbee2mqtt("node1");
    const read = await lab.znp("node1", "nvram_read", ["-o", "/home/zigbee/link-formed.json"]);
    expect(read.code, read.stderr.slice(-2000)).toBe(0);
    const formed = await lab.readFile("node1", "/home/zigbee/link-formed.json");
    await lab.writeFile("node2", "/home/zigbee/link-formed.json", formed, { user: "zigbee" });

    // deletes, creates and writes of ~600 items, then the soft reset nvram_write ends with
    const write = await lab.znp("node2", "nvram_write", ["-i", "/home/zigbee/link-formed.json"], {
      timeout: 300_000,
    });
    expect(write.code, write.stderr.slice(-2000)).toBe(0);
    const written = await lab.simulator("node2").nvram();
    const source = JSON.parse(formed) as NvramDump;
    for (const [section, items] of Object.entries(source))
      for (const [key, value] of Object.entries(items))
        expect(written[section]?.[key], `${section}.${key}`).toBe(value);
    expect((await lab.simulator("node2").status()).state).toBe("hold"); // the reset arrived before the port closed

    const bridge = await lab.startZigbee2mqtt("node2", { timeout: 300_000 });
    expect(bridge.info?.coordinator?.ieee_address).toBe(`0x${lab.node("node1").ieee}`);
    expect(bridge.info?.config?.frontend?.host).toBe(lab.node("node2").address);
    expect((await lab.simulator("node2").status()).state).toBe("started");
    // its clean stop includes herdsman's backup (~940 requests) over the same line
    await lab.stopZigbee2mqtt("node2");
    expect((await lab.service("node2", "status")).code).toBe(3);
  });
});
