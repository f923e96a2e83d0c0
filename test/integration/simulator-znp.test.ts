/**
 * The real zigpy-znp 1.1.1 tools (the ones the sidecar runs on the nodes) against the simulated
 * dongle, over TCP (socket://) and over the pty, on loopback.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runZnpTool, znpPython, znpToolsInstalled } from "../helpers/znp-tools.js";
import { SimulatorProcess } from "../lab/simulator/process.js";

type Dump = Record<string, Record<string, string>>;

const formedPath = "/work/shared/data/nvram/CC2652R-ZStack4.formed.json";
const resetPath = "/work/shared/data/nvram/CC2652R-ZStack4.reset.json";
const formed = JSON.parse(readFileSync(formedPath, "utf8")) as Dump;
const blank = JSON.parse(readFileSync(resetPath, "utf8")) as Dump;
/** Items whose value is the chip's own (identity, random keys), not a firmware default. */
const CHIP_SPECIFIC = new Set(["EXTADDR", "EXTENDED_PAN_ID", "PRECFGKEY", "TCLK_SEED"]);

const timings: Record<string, number[]> = {};
function timed(name: string, ms: number): void {
  timings[name] ??= [];
  timings[name].push(ms);
}

let dir: string;
const sims: SimulatorProcess[] = [];

async function startSim(name: string, ieee: string): Promise<SimulatorProcess> {
  const sim = await SimulatorProcess.start({ dir, name, ieee, pty: true, framesPerSecond: 5 });
  sims.push(sim);
  return sim;
}

function readJson(path: string): Dump {
  return JSON.parse(readFileSync(path, "utf8")) as Dump;
}

/**
 * A blank chip's items. STARTUP_OPTION reads 02 right after the boot that recreated the items (as
 * in the real dump) and 00 after any later boot, which acts on the bit and clears it.
 */
function expectBlank(dump: Dump, ieeeLe: string, startupOption = "02"): void {
  expect(Object.keys(dump).sort()).toEqual(Object.keys(blank).sort());
  expect(Object.keys(dump.LEGACY!).sort()).toEqual(Object.keys(blank.LEGACY!).sort());
  for (const [name, value] of Object.entries(blank.LEGACY!)) {
    if (name === "STARTUP_OPTION") expect(dump.LEGACY![name], name).toBe(startupOption);
    else if (!CHIP_SPECIFIC.has(name)) expect(dump.LEGACY![name], name).toBe(value);
  }
  expect(dump.LEGACY!.EXTADDR).toBe(ieeeLe);
  for (const table of ["TCLK_TABLE", "APS_KEY_DATA_TABLE", "NWK_SEC_MATERIAL_TABLE"]) {
    expect(dump[table], table).toEqual(blank[table]);
  }
}

async function tool(...args: Parameters<typeof runZnpTool>) {
  const run = await runZnpTool(...args);
  timed(args[0], run.durationMs);
  if (run.code !== 0) throw new Error(`${args[0]} exited ${run.code}:\n${run.stderr.slice(-3000)}`);
  return run;
}

beforeAll(() => {
  if (!znpToolsInstalled()) {
    throw new Error(`zigpy-znp is not installed at ${znpPython()}: run scripts/setup.sh znp`);
  }
  dir = mkdtempSync(join(tmpdir(), "sim-znp-"));
});

afterAll(async () => {
  for (const sim of sims) await sim.stop();
  // KEEP_TEST_DIRS=1 keeps the simulators' state, logs and frame traces for a post-mortem.
  if (process.env.KEEP_TEST_DIRS) console.info(`kept ${dir}`);
  else rmSync(dir, { recursive: true, force: true });
  console.info(
    "zigpy-znp tool durations (ms, incl. ~1.5 s Python start-up):",
    JSON.stringify(
      Object.fromEntries(
        Object.entries(timings).map(([k, v]) => [
          k,
          { runs: v.length, min: Math.min(...v), max: Math.max(...v) },
        ]),
      ),
    ),
  );
});

describe("zigpy-znp tools against a simulated dongle", () => {
  let primary: SimulatorProcess;
  let backupFile: string;

  it("nvram_read of a blank dongle over TCP gives a real chip's blank item set, as the control socket reports it", async () => {
    primary = await startSim("primary", "00124b0011223344");
    const out = join(dir, "blank.json");
    await tool("nvram_read", primary.socketUrl, ["-o", out]);
    const dump = readJson(out);
    expectBlank(dump, "44332211004b1200");
    expect(await primary.client.nvram()).toEqual(dump);
  }, 30_000);

  it("nvram_write of the real formed dump over the pty, then nvram_read, gives back every item", async () => {
    await tool("nvram_write", primary.ptyPath!, ["-i", formedPath]);
    const out = join(dir, "formed-readback.json");
    await tool("nvram_read", primary.ptyPath!, ["-o", out]);
    const dump = readJson(out);
    expect(Object.keys(dump).sort()).toEqual(Object.keys(formed).sort());
    for (const [section, items] of Object.entries(formed)) {
      for (const [key, value] of Object.entries(items)) {
        expect(dump[section]![key], `${section}.${key}`).toBe(value);
      }
      expect(Object.keys(dump[section]!).sort(), section).toEqual(Object.keys(items).sort());
    }
    expect(Object.keys(dump.DEVICE_LIST!)).toHaveLength(51);
    expect(Object.keys(dump.ADDRMGR!)).toHaveLength(257);
    const status = await primary.status();
    // nvram_write ends with a soft reset: the chip waits in HOLD with the copied network in NV
    expect(status).toMatchObject({
      state: "hold",
      ieee: "00124b001e17efa8",
      hardware_ieee: "00124b0011223344",
      pan_id: 0x4402,
      extended_pan_id: "a2ba38a8b5e683a0",
      channel: 15,
      configured: true,
      nwk_frame_counter: 7500,
    });
  }, 60_000);

  it("network_backup writes a valid Open Coordinator Backup of that network", async () => {
    backupFile = join(dir, "backup.json");
    await tool("network_backup", primary.socketUrl, ["-o", backupFile]);
    const check = spawnSync(
      znpPython(),
      [
        "-c",
        "import json,sys; from zigpy_znp.tools.common import validate_backup_json; validate_backup_json(json.load(open(sys.argv[1])))",
        backupFile,
      ],
      { encoding: "utf8" },
    );
    expect(check.status, check.stderr).toBe(0);
    const backup = JSON.parse(readFileSync(backupFile, "utf8"));
    expect(backup).toMatchObject({
      coordinator_ieee: "00124b001e17efa8",
      pan_id: "4402",
      extended_pan_id: "a2ba38a8b5e683a0",
      channel: 15,
      network_key: { key: "4c4e72b8412251799abf35251288ca83", sequence_number: 0, frame_counter: 7500 },
    });
    expect(backup.devices.length).toBeGreaterThan(0);
  }, 30_000);

  it("network_restore -c 2500 onto a blank dongle recreates the same network with the counter 2500 higher", async () => {
    const spare = await startSim("spare", "00124b00aabbccdd");
    await tool("network_restore", spare.socketUrl, ["-i", backupFile, "-c", "2500"]);
    const status = await spare.status();
    expect(status).toMatchObject({
      state: "hold",
      ieee: "00124b001e17efa8",
      hardware_ieee: "00124b00aabbccdd",
      pan_id: 0x4402,
      extended_pan_id: "a2ba38a8b5e683a0",
      channel: 15,
      configured: true,
      nwk_frame_counter: 10000,
    });
    const again = join(dir, "backup-after-restore.json");
    await tool("network_backup", spare.ptyPath!, ["-o", again]);
    const before = JSON.parse(readFileSync(backupFile, "utf8"));
    const after = JSON.parse(readFileSync(again, "utf8"));
    for (const key of [
      "coordinator_ieee",
      "pan_id",
      "extended_pan_id",
      "channel",
      "channel_mask",
      "nwk_update_id",
    ]) {
      expect(after[key], key).toEqual(before[key]);
    }
    expect(after.network_key).toEqual({
      ...before.network_key,
      frame_counter: before.network_key.frame_counter + 2500,
    });
    expect(after.stack_specific).toEqual(before.stack_specific);
    const byIeee = (list: Array<{ ieee_address: string }>) =>
      [...list].sort((a, b) => a.ieee_address.localeCompare(b.ieee_address));
    expect(
      after.devices.map((d: { ieee_address: string; nwk_address: string | null }) => d.ieee_address),
    ).toEqual(byIeee(before.devices).map((d) => d.ieee_address));
    for (const device of before.devices as Array<{
      ieee_address: string;
      link_key?: { key: string; tx_counter: number };
    }>) {
      const restored = after.devices.find(
        (d: { ieee_address: string }) => d.ieee_address === device.ieee_address,
      );
      if (device.link_key) {
        // zigpy-znp's restore writes link keys with the counter unchanged; only the NWK counter moves
        expect(restored.link_key.key).toBe(device.link_key.key);
      }
    }
  }, 60_000);

  it("nvram_reset brings the dongle back to the blank item set with its factory IEEE", async () => {
    await tool("nvram_reset", primary.ptyPath!);
    const out = join(dir, "after-reset.json");
    await tool("nvram_read", primary.socketUrl, ["-o", out]);
    expectBlank(readJson(out), "44332211004b1200");
    expect(await primary.status()).toMatchObject({
      ieee: "00124b0011223344",
      configured: false,
      pan_id: null,
    });
  }, 30_000);

  it("survives 20 tool runs in a row opening and closing the pty", async () => {
    const spare = sims.find((s) => s.ptyPath?.endsWith("spare.tty"))!;
    const results: number[] = [];
    for (let i = 0; i < 20; i++) {
      const out = join(dir, `loop-${i}.json`);
      const run = await runZnpTool("network_backup", spare.ptyPath!, ["-o", out]);
      timed("network_backup (pty loop)", run.durationMs);
      results.push(run.code ?? -1);
      if (run.code === 0) expect(JSON.parse(readFileSync(out, "utf8")).pan_id).toBe("4402");
    }
    expect(results).toEqual(Array(20).fill(0));
    expect((await spare.waitForNoHost()).state).toBe("hold");
  }, 120_000);

  it("an unplugged dongle makes the tools fail with exit 1 and its pty disappear; replugged, it answers again", async () => {
    const status = await primary.client.unplug();
    expect(status).toMatchObject({ unplugged: true, host_connected: false });
    expect(existsSync(primary.ptyPath!)).toBe(false);
    const overPty = await runZnpTool("nvram_read", primary.ptyPath!, ["-o", join(dir, "unplugged-pty.json")]);
    const overTcp = await runZnpTool("nvram_read", primary.socketUrl, [
      "-o",
      join(dir, "unplugged-tcp.json"),
    ]);
    expect(overPty.code).toBe(1);
    expect(overTcp.code).toBe(1);

    expect(await primary.client.replug()).toMatchObject({ unplugged: false, state: "hold" });
    expect(existsSync(primary.ptyPath!)).toBe(true);
    await tool("nvram_read", primary.ptyPath!, ["-o", join(dir, "replugged.json")]);
    // the replug was a second boot since the reset: STARTUP_OPTION's 0x02 has been acted on
    expectBlank(readJson(join(dir, "replugged.json")), "44332211004b1200", "00");
  }, 60_000);
});
