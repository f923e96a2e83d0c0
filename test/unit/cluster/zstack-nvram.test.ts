/**
 * The zstack-nvram driver's procedures against fake nodes holding a real CC2652R dump
 * (../shared/data/nvram): what each one reads and writes, and its counter arithmetic.
 */
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { describe, expect, it } from "vitest";
import { stringify } from "yaml";
import type { ClusterContext } from "../../../sidecar/cluster/context.js";
import { zstackNvram } from "../../../sidecar/cluster/coordinators/zstack-nvram.js";
import { parseConfig } from "../../../sidecar/config/load.js";
import {
  changedItems,
  countItems,
  frameCounterOf,
  type NvramDump,
  networkOf,
  parseNvram,
  raiseFrameCounter,
} from "../../../sidecar/coordinator/nvram.js";
import { StateStore } from "../../../sidecar/store/state.js";
import { sharedData } from "../../helpers/shared-data.js";
import { unreachableNodes } from "../../helpers/sidecar.js";

function world(held: NvramDump) {
  const dir = mkdtempSync(join(tmpdir(), "z2mha-zstack-"));
  const config = parseConfig(
    stringify({ state_dir: dir, mqtt: { url: "mqtt://127.0.0.1:1" }, nodes: unreachableNodes() }),
  );
  const calls: string[] = [];
  let dongle: NvramDump = structuredClone(held);
  const fake = (id: string) => ({
    id,
    config: config.nodes.find((n) => n.id === id),
    nvramRead: async () => {
      calls.push(`${id} nvram_read`);
      return JSON.stringify(dongle);
    },
    nvramWrite: async (text: string) => {
      calls.push(`${id} nvram_write ${countItems(JSON.parse(text))} items`);
      const written = JSON.parse(text) as NvramDump;
      for (const [section, items] of Object.entries(written))
        dongle[section] = { ...(dongle[section] ?? {}), ...(items as Record<string, string>) };
    },
    nvramReset: async () => {
      calls.push(`${id} nvram_reset`);
      dongle = { LEGACY: { EXTADDR: held.LEGACY?.EXTADDR ?? "" } };
    },
    parkCoordinator: async () => {
      calls.push(`${id} park`);
      return "USERDESC";
    },
  });
  const state = new StateStore(dir);
  const cx = {
    config,
    state,
    logger: pino({ level: "silent" }),
    nodes: new Map(config.nodes.map((n) => [n.id, fake(n.id)])),
  } as unknown as ClusterContext;
  return { cx, calls, state, dongle: () => dongle };
}

const signal = () => new AbortController().signal;

describe("the zstack-nvram driver's procedures", () => {
  const formed = parseNvram(readFileSync(sharedData("nvram", "CC2652R-ZStack4.formed.json"), "utf8"), {
    requireNetwork: true,
  });
  const counter = frameCounterOf(formed);

  it("raises a counter by writing only the counter items, above `above` + the increment", async () => {
    const { cx, calls, state, dongle } = world(formed);
    const detail = await zstackNvram.raiseCounter(cx, "node1", counter + 10_000, signal(), []);
    const target = counter + 10_000 + 2500;
    expect(detail).toMatch(new RegExp(`frame counter ${counter} → ${target}`));
    const counterItems = countItems(changedItems(formed, raiseFrameCounter(formed, target)));
    expect(calls).toEqual(["node1 nvram_read", `node1 nvram_write ${counterItems} items`]);
    expect(frameCounterOf(dongle())).toBe(target);
    // Everything but the counters is as it was.
    expect(countItems(changedItems(raiseFrameCounter(formed, target), dongle()))).toBe(0);
    expect(state.get().frame_counter_issued).toMatchObject({ node: "node1", counter: target });
  });

  it("never lowers a counter: one already above the target is left as it is", async () => {
    const high = raiseFrameCounter(formed, counter + 50_000);
    const { cx, calls } = world(high);
    const detail = await zstackNvram.raiseCounter(cx, "node1", counter, signal(), []);
    expect(detail).toMatch(/is already above/);
    expect(calls).toEqual(["node1 nvram_read"]);
  });

  it("refuses a target that would wrap the 32-bit counter, before writing anything", async () => {
    const { cx, calls } = world(formed);
    await expect(zstackNvram.raiseCounter(cx, "node1", 0xffff_ffff, signal(), [])).rejects.toThrow(
      /frame counter/i,
    );
    expect(calls).toEqual(["node1 nvram_read"]);
  });

  it("retires a copy: reads how far it counted, then resets it", async () => {
    const { cx, calls, dongle } = world(formed);
    expect(await zstackNvram.retire(cx, "node2", signal(), [])).toBe(counter);
    expect(calls).toEqual(["node2 nvram_read", "node2 nvram_reset"]);
    expect(dongle().LEGACY?.NIB).toBeUndefined();
  });

  it("parks with the unchanged write of an inert item after reading it", async () => {
    const { cx, calls } = world(formed);
    expect(await zstackNvram.park(cx, "node1", signal(), [])).toMatch(
      /soft reset \(nvram_write of USERDESC unchanged\)/,
    );
    expect(calls).toEqual(["node1 nvram_read", "node1 park"]);
  });

  it("captures a fenced old active that answers: its dump kept for the restore, then parked", async () => {
    const { cx, calls } = world(formed);
    const ctx = {
      kind: "failover",
      from: "node1",
      to: "node2",
      expected: {},
      committed: false,
      stoppedFrom: true,
      touchedTo: false,
      startedTo: false,
      outage: {},
      notes: [],
    } as Parameters<typeof zstackNvram.captureAndPark>[1];
    const detail = await zstackNvram.captureAndPark(cx, ctx, "node1", signal());
    expect(detail).toMatch(new RegExp(`read \\(frame counter ${counter}\\) and parked`));
    expect(networkOf(ctx.freshDump as NvramDump).frame_counter).toBe(counter);
    expect(calls).toEqual(["node1 nvram_read", "node1 park"]);
  });
});
