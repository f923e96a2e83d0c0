/**
 * The switchover pipeline's order and invariants, not its timings (issue 13): the target's dongle
 * is written before the old active stops only with a copy the controller already holds (its
 * earlier contents kept when they were another network), and during the outage only once the old
 * active's dump was read and validated; at most one coordinator runs the network at every moment
 * sampled; the counter never goes lower; the target ends holding the dump, counters aside.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { OperationRecord } from "../../sidecar/types.js";
import { AirSampler, highestCounter } from "../bench/reliability.js";
import { type SidecarHandle, sharedLab, sleep, startSidecar } from "./sidecar-harness.js";
import {
  dongleAtRest,
  expectActive,
  freshNetwork,
  type Identity,
  leaveNode1Active,
  type Nvram,
  nvramDifferences,
  nvWriteCount,
  runWhenFree,
  startWhenFree,
  storedNvramDump,
} from "./takeover-checks.js";
import type { HostId, Lab } from "./world.js";

const ORDER = [
  "preflight",
  "ensure-target-stopped",
  "prepare-target-nvram",
  "stop-source",
  "read-source-nvram",
  "write-target-nvram",
  "verify-target-nvram",
  "start-target",
  "wait-target-online",
  "persist-active",
];

let lab: Lab;
let h: SidecarHandle;
let network: Identity;
const air = () => new AirSampler(lab);

beforeAll(async () => {
  lab = await sharedLab();
  network = await freshNetwork(lab);
  // The pipeline's own preparation of the target is under test: syncs leave the standby's dongle
  // as it is (arming is tested in failover.test.ts).
  h = await startSidecar(lab, { failover: { automatic: false, arm_standby: false } });
});

afterAll(async () => {
  await h?.stop();
  await leaveNode1Active(lab);
});

const nvWrites = (node: HostId) => nvWriteCount(lab, node);

interface Sample {
  at: number;
  writes: number;
  /** Keys of the steps the operation had finished when the sample was taken. */
  finished: string[];
}

/**
 * Runs a switchover to `to` while sampling, every ~100 ms, how many NV writes `to`'s dongle has
 * received and which steps had finished, and (AirSampler, 4 Hz) which dongles run the network.
 */
async function sampledSwitchover(to: HostId) {
  const sampler = air();
  const samples: Sample[] = [];
  const counterBefore = await highestCounter(lab);
  const writesBefore = await nvWrites(to);
  sampler.start();
  const started = await startWhenFree(h.api, "switchover", { target: to, reason: `pipeline → ${to}` });
  let op: OperationRecord = started;
  while (op.status === "running") {
    const [writes, current] = await Promise.all([nvWrites(to), h.api.operation(started.id)]);
    op = current;
    samples.push({
      at: Date.now(),
      writes,
      finished: op.steps.filter((s) => s.status === "succeeded").map((s) => s.key),
    });
    await sleep(100);
  }
  sampler.stop();
  return { op, samples, writesBefore, counterBefore, sampler };
}

function expectPipeline(run: Awaited<ReturnType<typeof sampledSwitchover>>, from: HostId, to: HostId) {
  const { op, samples, writesBefore, sampler } = run;
  expect(op.status, JSON.stringify(op.error)).toBe("succeeded");
  const keys = op.steps.filter((s) => !s.key.startsWith("stage:")).map((s) => s.key);
  expect(keys).toEqual(ORDER);
  // Once zigbee2mqtt on the old active stopped and until its dump was read and validated, the
  // target's dongle received no write.
  const stopped = samples.filter((s) => s.finished.includes("stop-source"));
  const beforeRead = stopped.filter((s) => !s.finished.includes("read-source-nvram"));
  const atStop = stopped[0]?.writes ?? Number.NaN;
  for (const s of beforeRead) expect(s.writes).toBe(atStop);
  // Before the old active stopped, writes only in the prepare step.
  const beforePrepare = samples.filter((s) => !s.finished.includes("ensure-target-stopped"));
  for (const s of beforePrepare) expect(s.writes).toBe(writesBefore);
  const prepare = op.steps.find((s) => s.key === "prepare-target-nvram");
  if (!/written and read back/.test(prepare?.detail ?? ""))
    for (const s of samples.filter((x) => !x.finished.includes("stop-source")))
      expect(s.writes).toBe(writesBefore);
  // Never two coordinators on the air.
  expect(sampler.samples).toBeGreaterThan(0);
  expect(sampler.violations).toEqual([]);
  expect(op.result).toMatchObject({ from, to, committed: true });
  return {
    prepare: prepare?.detail ?? "",
    write: op.steps.find((s) => s.key === "write-target-nvram")?.detail ?? "",
    verify: op.steps.find((s) => s.key === "verify-target-nvram")?.detail ?? "",
  };
}

async function expectMoved(run: Awaited<ReturnType<typeof sampledSwitchover>>, from: HostId, to: HostId) {
  await expectActive(h, to, network);
  const old = await dongleAtRest(lab, from);
  const now = await lab.simulator(to).status();
  // The counter never goes lower: above anything any dongle used before, and above the old one.
  expect(now.nwk_frame_counter).toBeGreaterThan(run.counterBefore);
  expect(now.nwk_frame_counter).toBeGreaterThan(old.max_nwk_frame_counter);
  expect(old.state).toBe("hold");
  const dump = storedNvramDump(h, run.op.result?.nvram_snapshot as string);
  expect(nvramDifferences(dump, (await lab.simulator(to).nvram()) as Nvram)).toEqual([]);
}

describe("switchover pipeline", () => {
  it("onto a blank dongle, with no NVRAM snapshot yet: nothing written before the old active stops", async () => {
    const run = await sampledSwitchover("node2");
    const { prepare } = expectPipeline(run, "node1", "node2");
    expect(prepare).toMatch(/no NVRAM snapshot of this one yet|holds this network already/);
    await expectMoved(run, "node1", "node2");
  });

  it("back onto the parked old active: it holds the network; its counter is raised before the stop, nothing is written in the outage", async () => {
    const run = await sampledSwitchover("node1");
    const { prepare, write, verify } = expectPipeline(run, "node2", "node1");
    // Only the counter items change before the stop: the controller knows node2's counter (it
    // wrote it) and bounds what node2 can have sent since.
    const [, raised, written] =
      /holds this network already .*; its counter raised to (\d+) \((\d+) items written and read back\)/.exec(
        prepare,
      ) ?? [];
    expect(Number(written)).toBeGreaterThan(0);
    expect(Number(written)).toBeLessThanOrEqual(4);
    // node2's read confirmed the guess: the outage wrote nothing, and the read before it stands
    // as the verification (no second read).
    expect(write).toMatch(/^all \d+ items already identical .*: nothing written$/);
    expect(verify).toMatch(/verify \([\d.]+ s\): nothing written in the outage/);
    expect(verify).toMatch(/park node2 \([\d.]+ s\): soft reset/);
    expect(run.op.result?.frame_counter).toMatchObject({ restored: Number(raised) });
    await expectMoved(run, "node2", "node1");
  });

  it("onto a blank dongle once the controller holds a copy: the copy, its counter raised, written and read back before the stop; nothing left for the outage", async () => {
    const snapshotsBefore = (
      await h.api.call<{ snapshots: { id: string; kind: string }[] }>("GET", "/api/v1/snapshots")
    ).snapshots
      .filter((s) => s.kind === "nvram")
      .map((s) => s.id);
    const run = await sampledSwitchover("node3");
    const { prepare, write } = expectPipeline(run, "node1", "node3");
    const [, copy] =
      /reset, (\S+) written and read back \(\d+ items, frame counter raised to \d+\)/.exec(prepare) ?? [];
    // The copy written before the stop is one the controller held before this switchover began.
    expect(snapshotsBefore).toContain(copy);
    expect(write).toMatch(/nothing written$/);
    await expectMoved(run, "node1", "node3");
    expect((await runWhenFree(h.api, "switchover", { target: "node1" })).status).toBe("succeeded");
  });

  it("a corrupt dump from the old active: rolled back before the target's dongle received any write in the outage", async () => {
    const before = await nvWrites("node2");
    const held = await lab.simulator("node2").nvram();
    await lab.fault("tool-fault", "node1", { tool: "nvram_read", mode: "corrupt", times: 1 });
    try {
      const op = await runWhenFree(h.api, "switchover", { target: "node2" });
      expect(op.status).toBe("rolled_back");
      expect(op.error?.step).toBe("read NVRAM on node1");
      // node2 held this network (it was active before): before node1 stopped, at most its
      // counter items were raised; in the outage, nothing was written.
      const prepare = op.steps.find((s) => s.key === "prepare-target-nvram")?.detail ?? "";
      expect(prepare).toMatch(/holds this network already/);
      const [, written = "0"] = /\((\d+) items written and read back\)/.exec(prepare) ?? [];
      expect(await nvWrites("node2")).toBe(before + Number(written));
      const after = (await lab.simulator("node2").nvram()) as Nvram;
      expect(nvramDifferences(held as Nvram, after)).toEqual([]);
      expect(nvramDifferences(after, held as Nvram)).toEqual([]);
      await expectActive(h, "node1", network);
    } finally {
      await lab.fault("tool-fault", "node1", { clear: true });
    }
  });
});
