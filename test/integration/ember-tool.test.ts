/**
 * The BUILT node tool (dist/ember-tool.js, run with `node` as the controller runs it on a
 * zigbee2mqtt node) against simulated EmberZNet NCPs on a pty and over TCP, with the real
 * zigbee2mqtt 2.14.1 (adapter ember) forming, resuming and restoring networks around it: info on a
 * blank dongle and on one holding zigbee2mqtt's network (and parked afterwards), park after
 * zigbee2mqtt left the NCP on the air, wipe followed by a restore from coordinator_backup.json,
 * the one-time custom EUI64 token, a port that does not exist, and the realistic serial line.
 */
import { spawn, spawnSync } from "node:child_process";
import { copyFileSync, existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { builtinModules } from "node:module";
import { createServer } from "node:net";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../helpers/mosquitto.js";
import { TEST_EPID as EPID, Z2mHarness } from "../helpers/z2m-harness.js";
import { EmberSimulatorProcess } from "../lab/simulator-ember/process.js";

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const TOOL = join(repoRoot, "dist", "ember-tool.js");

const FPS = 20;
const EUI_A = "8c65a3fffe00a0a1";
const EUI_B = "8c65a3fffe00b0b2";
const EUI_R = "8c65a3fffe00e0e5";
const CUSTOM = "8c65a3fffe00c0cc";
const OTHER = "8c65a3fffe00d0dd";

const h = new Z2mHarness({ prefix: "ember-tool-", adapter: "ember" });
/** The tool's runs, by label. */
const timings: Record<string, number> = {};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface ToolRun {
  code: number | null;
  json: Record<string, unknown>;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Run the built tool as the controller does: `node ember-tool.js <command> --port … …`. */
function tool(args: string[], label?: string): Promise<ToolRun> {
  const started = Date.now();
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [TOOL, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c: Buffer) => {
      stdout += c.toString();
    });
    child.stderr.on("data", (c: Buffer) => {
      stderr += c.toString();
    });
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`ember-tool ${args.join(" ")} still running after 60 s; stderr:\n${stderr}`));
    }, 60_000);
    child.once("close", (code) => {
      clearTimeout(timer);
      const ms = Date.now() - started;
      if (label) timings[label] = ms;
      // exactly one JSON object, on one line
      const lines = stdout.split("\n").filter((l) => l !== "");
      if (lines.length !== 1) {
        reject(new Error(`ember-tool printed ${lines.length} lines:\n${stdout}\nstderr:\n${stderr}`));
        return;
      }
      resolvePromise({ code, json: JSON.parse(lines[0]!) as Record<string, unknown>, stdout, stderr, ms });
    });
  });
}

async function startSim(
  name: string,
  eui64: string,
  extra: { link?: "instant" | "realistic"; statePath?: string } = {},
): Promise<EmberSimulatorProcess> {
  return h.track(
    await EmberSimulatorProcess.start({ dir: h.dir, name, eui64, pty: true, framesPerSecond: FPS, ...extra }),
  );
}

interface Backup {
  pan_id: string;
  extended_pan_id: string;
  channel: number;
  network_key: { key: string; frame_counter: number };
}

const readBackup = (data: string) => h.readBackup<Backup>(data);

/** Newest modification time among the files a build of the tool depends on. */
function newestSource(): number {
  const files = [
    join(repoRoot, "sidecar/coordinator/ember-tool.ts"),
    join(repoRoot, "tsup.config.ts"),
    ...readdirSync(join(repoRoot, "sidecar/coordinator/ember")).map((f) =>
      join(repoRoot, "sidecar/coordinator/ember", f),
    ),
  ];
  return Math.max(...files.map((f) => statSync(f).mtimeMs));
}

beforeAll(async () => {
  // The integration project's global setup builds dist/ once; build again only if it is stale, so a
  // suite running dist/cli.js meanwhile does not see dist/ cleaned under it.
  if (!existsSync(TOOL) || statSync(TOOL).mtimeMs < newestSource()) {
    const build = spawnSync("npm", ["run", "build"], { cwd: repoRoot, encoding: "utf8" });
    if (build.status !== 0) throw new Error(`npm run build failed:\n${build.stdout}\n${build.stderr}`);
  }
  await h.setup();
}, 120_000);

afterAll(async () => {
  await h.teardown();
  console.info("ember-tool timings (ms, process start to exit):", JSON.stringify(timings));
});

describe("dist/ember-tool.js against simulated EmberZNet NCPs", () => {
  let simA: EmberSimulatorProcess;
  let dataA: string;

  it("is one self-contained file: it imports nothing but Node's own modules", () => {
    const source = readFileSync(TOOL, "utf8");
    expect(source.startsWith("#!/usr/bin/env node")).toBe(true);
    const imported = [...source.matchAll(/^\s*import\s[^;]*?from\s+"([^"]+)"|^\s*import\s+"([^"]+)"/gm)].map(
      (m) => m[1] ?? m[2]!,
    );
    expect(imported.length).toBeGreaterThan(0);
    for (const name of imported) expect(builtinModules).toContain(name.replace(/^node:/, ""));
    expect(source).not.toMatch(/\brequire\(|import\(/);
  });

  it("info on a blank dongle, over the pty and over TCP; the NCP is left without a network", async () => {
    simA = await startSim("a", EUI_A);
    const expected = {
      eui64: `0x${EUI_A}`,
      custom_eui64: null,
      ezsp_version: 14,
      stack_version: "8.0.2.0",
      network: null,
    };
    const pty = await tool(["info", "--port", simA.ptyPath!], "info blank (pty)");
    expect(pty.code, pty.stdout).toBe(0);
    expect(pty.json).toEqual(expected);
    await simA.waitForNoHost();
    const tcp = await tool(["info", "--port", simA.herdsmanTcpPath], "info blank (tcp)");
    expect(tcp.code, tcp.stdout).toBe(0);
    expect(tcp.json).toEqual(expected);
    await simA.waitForNoHost();
    expect(await simA.status()).toMatchObject({ state: "no_network", network_up: false });
    expect((await simA.client.stats()).unknown_frame_ids).toEqual([]);
  });

  it("info on the network zigbee2mqtt formed and left running: shows it and its counter, then parks the NCP", async () => {
    dataA = h.dataDir("data-a", simA.ptyPath!);
    const z2m = await h.z2mOnline(dataA, "form", "reset");
    await h.stopZ2m(z2m, "form", simA);
    const left = await simA.status();
    expect(left).toMatchObject({ state: "up", network_up: true, pan_id: 6754 });
    const backup = readBackup(dataA);

    const run = await tool(["info", "--port", simA.ptyPath!], "info with network (pty)");
    expect(run.code, run.stdout).toBe(0);
    const network = run.json.network as Record<string, number | string>;
    expect(run.json).toMatchObject({ eui64: `0x${EUI_A}`, custom_eui64: null, ezsp_version: 14 });
    expect(network).toMatchObject({
      pan_id: 6754,
      extended_pan_id: `0x${EPID}`,
      channel: 15,
      node_type: "coordinator",
    });
    // the counter the network key uses: at least what the backup saw and what the NCP had counted
    const counter = network.nwk_frame_counter as number;
    expect(counter).toBeGreaterThanOrEqual(backup.network_key.frame_counter);
    expect(counter).toBeGreaterThanOrEqual(left.nwk_frame_counter);

    await simA.waitForNoHost();
    const parked = await simA.status();
    expect(parked).toMatchObject({ state: "down", network_up: false, configured: true, pan_id: 6754 });
    // the network ran only between networkInit and the final RST
    expect(parked.nwk_frame_counter - counter).toBeLessThanOrEqual(5);
    await sleep(1000);
    expect((await simA.status()).nwk_frame_counter).toBe(parked.nwk_frame_counter);
    expect((await simA.client.stats()).unknown_frame_ids).toEqual([]);
  }, 150_000);

  it("park after zigbee2mqtt exited: off the air (counter stops), and zigbee2mqtt resumes the same network next time", async () => {
    const z2m = await h.z2mOnline(dataA, "resume after info", "resumed");
    await h.stopZ2m(z2m, "resume after info", simA);
    const before = await simA.status();
    expect(before.network_up).toBe(true);
    await sleep(600);
    expect((await simA.status()).nwk_frame_counter).toBeGreaterThan(before.nwk_frame_counter);

    const run = await tool(["park", "--port", simA.herdsmanTcpPath], "park (tcp)");
    expect(run.code, run.stdout).toBe(0);
    expect(run.json).toEqual({ parked: true });
    await simA.waitForNoHost();
    const parked = await simA.status();
    expect(parked).toMatchObject({ state: "down", network_up: false, configured: true });
    await sleep(1000);
    expect((await simA.status()).nwk_frame_counter).toBe(parked.nwk_frame_counter);

    const again = await h.z2mOnline(dataA, "resume after park", "resumed");
    expect(again.output).toContain("[INIT TC] Adapter network matches config.");
    expect(await simA.status()).toMatchObject({
      state: "up",
      eui64: EUI_A,
      pan_id: 6754,
      extended_pan_id: EPID,
      channel: 15,
    });
    expect((await simA.status()).nwk_frame_counter).toBeGreaterThanOrEqual(parked.nwk_frame_counter);
    await h.stopZ2m(again, "resume after park", simA);

    // park over the pty too
    const pty = await tool(["park", "--port", simA.ptyPath!], "park (pty)");
    expect(pty.json).toEqual({ parked: true });
    await simA.waitForNoHost();
    expect((await simA.status()).network_up).toBe(false);
  }, 150_000);

  it("a TCP coordinator already serving a client refuses the tool: exit 1, nothing reset", async () => {
    const z2m = await h.z2mOnline(dataA, "resume for busy port", "resumed");
    const resets = (await simA.client.stats()).resets;
    const run = await tool(
      ["info", "--port", simA.herdsmanTcpPath, "--timeout-ms", "5000"],
      "info busy (tcp)",
    );
    expect(run.code).toBe(1);
    expect(run.json.error).toMatch(/closed the connection \(is another client, zigbee2mqtt, connected\?\)/);
    expect((await simA.client.stats()).resets).toBe(resets);
    expect((await simA.status()).network_up).toBe(true);
    await h.stopZ2m(z2m, "resume for busy port", simA);
  }, 120_000);

  it("wipe leaves no network; zigbee2mqtt then restores its coordinator_backup.json", async () => {
    expect((await simA.status()).network_up).toBe(true);
    const backup = readBackup(dataA);
    const before = (await simA.client.stats()).commands;
    const run = await tool(["wipe", "--port", simA.ptyPath!], "wipe with network (pty)");
    expect(run.code, run.stdout).toBe(0);
    expect(run.json).toEqual({ wiped: true, method: "token-factory-reset" });
    // The network never came back up to be wiped: an RST first, its tokens erased, and the one
    // NETWORK_INIT is the check that answers NOT_JOINED.
    const after = (await simA.client.stats()).commands;
    const delta = (name: string) => (after[name] ?? 0) - (before[name] ?? 0);
    expect([delta("TOKEN_FACTORY_RESET"), delta("NETWORK_INIT"), delta("LEAVE_NETWORK")]).toEqual([1, 1, 0]);
    await simA.waitForNoHost();
    expect(await simA.status()).toMatchObject({ state: "no_network", network_up: false, configured: false });

    const z2m = await h.z2mOnline(dataA, "restore after wipe", "restored");
    expect(z2m.output).toContain("[INIT TC] Network init status=NOT_JOINED.");
    expect(z2m.output).toContain("[INIT TC] Forming from backup.");
    const status = await simA.status();
    expect(status).toMatchObject({
      state: "up",
      pan_id: 6754,
      extended_pan_id: EPID,
      channel: 15,
      eui64: EUI_A,
    });
    expect(status.host_set_nwk_frame_counter).toBe(backup.network_key.frame_counter);
    await h.stopZ2m(z2m, "restore after wipe", simA);

    const blank = await startSim("w", "8c65a3fffe00f0f1");
    const none = await tool(["wipe", "--port", blank.herdsmanTcpPath], "wipe blank (tcp)");
    expect(none.json).toEqual({ wiped: true, method: "token-factory-reset" });
    expect((await simA.client.stats()).unknown_frame_ids).toEqual([]);
  }, 150_000);

  it("info --no-network reads the EUI64 and its token without starting the network", async () => {
    const z2m = await h.z2mOnline(dataA, "network for info --no-network", "resumed");
    await h.stopZ2m(z2m, "network for info --no-network", simA);
    await tool(["park", "--port", simA.ptyPath!], "park before info --no-network");
    await simA.waitForNoHost();
    const inits = (await simA.client.stats()).commands.NETWORK_INIT ?? 0;
    const run = await tool(["info", "--no-network", "--port", simA.ptyPath!], "info --no-network (pty)");
    expect(run.code, run.stdout).toBe(0);
    expect(run.json).toMatchObject({ eui64: `0x${EUI_A}`, custom_eui64: null });
    expect(run.json).not.toHaveProperty("network");
    expect((await simA.client.stats()).commands.NETWORK_INIT ?? 0).toBe(inits);
    await simA.waitForNoHost();
    expect(await simA.status()).toMatchObject({ state: "down", network_up: false, configured: true });
  }, 120_000);

  it("set-eui64 writes a blank token, is idempotent for the same value, refuses another one", async () => {
    const simB = await startSim("b", EUI_B);
    const first = await tool(
      ["set-eui64", "--port", simB.ptyPath!, "--eui64", `0x${CUSTOM}`],
      "set-eui64 write (pty)",
    );
    expect(first.code, first.stdout).toBe(0);
    expect(first.json).toEqual({ eui64: `0x${CUSTOM}`, written: true });
    await simB.waitForNoHost();
    expect(await simB.status()).toMatchObject({
      eui64: CUSTOM,
      factory_eui64: EUI_B,
      custom_eui64_token: CUSTOM,
      state: "no_network",
    });

    const again = await tool(
      ["set-eui64", "--port", simB.herdsmanTcpPath, "--eui64", CUSTOM.toUpperCase()],
      "set-eui64 same (tcp)",
    );
    expect(again.code).toBe(0);
    expect(again.json).toEqual({ eui64: `0x${CUSTOM}`, written: false });

    const other = await tool(
      ["set-eui64", "--port", simB.ptyPath!, "--eui64", OTHER],
      "set-eui64 refused (pty)",
    );
    expect(other.code).toBe(1);
    expect(other.json).toEqual({
      error: `the dongle's custom EUI64 token is already written with 0x${CUSTOM} and can be written only once: this dongle cannot carry the network's EUI64 0x${OTHER}`,
    });

    const info = await tool(["info", "--port", simB.ptyPath!]);
    expect(info.json).toMatchObject({ eui64: `0x${CUSTOM}`, custom_eui64: `0x${CUSTOM}` });
    const stats = await simB.client.stats();
    expect(stats.commands.SET_MFG_TOKEN).toBe(1);
    expect(stats.unknown_frame_ids).toEqual([]);
  }, 60_000);

  it("a port that does not exist, or where nothing listens: exit 1 with a clear error", async () => {
    const missing = await tool(["info", "--port", join(h.dir, "no-such-tty")]);
    expect(missing.code).toBe(1);
    expect(missing.json).toEqual({
      error: `serial port ${join(h.dir, "no-such-tty")} does not exist (dongle unplugged or renamed?)`,
    });
    const port = await freePort();
    const refused = await tool(["info", "--port", `tcp://127.0.0.1:${port}`]);
    expect(refused.code).toBe(1);
    expect(refused.json).toEqual({ error: `cannot connect to tcp://127.0.0.1:${port}: ECONNREFUSED` });
    const usage = await tool(["info", "--port", "ttyACM0"]);
    expect(usage.code).toBe(2);
  });

  it("a coordinator that never answers (pty or TCP): exit 1 within the time limit, no hang", async () => {
    // a pty whose other end accepts bytes and says nothing
    const ptyPath = join(h.dir, "silent.tty");
    const socat = spawn(
      "socat",
      [`pty,link=${ptyPath},raw,echo=0`, `unix-listen:${join(h.dir, "silent.sock")}`],
      {
        stdio: "ignore",
      },
    );
    const server = createServer(() => {});
    try {
      for (let i = 0; i < 100 && !existsSync(ptyPath); i++) await sleep(20);
      const pty = await tool(["park", "--port", ptyPath, "--timeout-ms", "3000"], "park silent (pty)");
      expect(pty.code).toBe(1);
      expect(pty.json.error).toMatch(/does not answer an ASH reset \(no RSTACK within \d+ ms after 1 RST\)/);
      expect(pty.ms).toBeLessThan(3000 + 1500);

      await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      const tcp = await tool(
        ["info", "--port", `tcp://127.0.0.1:${port}`, "--timeout-ms", "2000"],
        "info silent (tcp)",
      );
      expect(tcp.code).toBe(1);
      expect(tcp.json.error).toMatch(/does not answer an ASH reset/);
      expect(tcp.ms).toBeLessThan(2000 + 1500);
    } finally {
      socat.kill();
      server.close();
    }
  });

  it("a stick pulled while the tool waits: exit 1 with the port's error", async () => {
    const simU = await startSim("u", "8c65a3fffe00f0f2");
    const run = tool(["info", "--port", simU.ptyPath!]);
    // the tool waits about a second for its RSTACK: pull the stick meanwhile
    await sleep(500);
    await simU.client.unplug();
    const result = await run;
    expect(result.code).toBe(1);
    expect(result.json.error).toMatch(/serial port .*u\.tty: /);
  });

  it("info over the realistic serial line (115200 baud, NCP latency), with a network in the tokens", async () => {
    // the same flash as A (its network restored by zigbee2mqtt), on a dongle behind a realistic line
    const statePath = join(h.dir, "r.state.json");
    copyFileSync(simA.statePath, statePath);
    const simR = await startSim("r", EUI_R, { link: "realistic", statePath });
    expect((await simR.status()).link).toMatchObject({ mode: "realistic", baud: 115200 });
    for (const [label, port] of [
      ["info realistic (pty)", simR.ptyPath!],
      ["info realistic (tcp)", simR.herdsmanTcpPath],
    ] as const) {
      const run = await tool(["info", "--port", port], label);
      expect(run.code, run.stdout).toBe(0);
      expect(run.json).toMatchObject({
        eui64: `0x${EUI_A}`,
        network: { pan_id: 6754, extended_pan_id: `0x${EPID}`, channel: 15, node_type: "coordinator" },
      });
      await simR.waitForNoHost();
    }
    const stats = await simR.client.stats();
    expect(stats.unknown_frame_ids).toEqual([]);
    expect(stats.link.sessions).toBe(2);
    expect(stats.ash.retransmitted).toBe(0);
    expect(await simR.status()).toMatchObject({ state: "down", network_up: false });
  }, 60_000);
});
