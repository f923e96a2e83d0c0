/**
 * The controller's own robustness against the real nodes (issue 12): what it deletes on a node,
 * file names shell tools misread, a takeover that fails before it touched anything, and a step
 * cut short while a zigpy-znp tool runs.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type SidecarHandle, sharedLab, startSidecar } from "./sidecar-harness.js";
import { freshNetwork, leaveNode1Active, runWhenFree } from "./takeover-checks.js";
import type { HostId, Lab } from "./world.js";

let lab: Lab;
/** Where node2's data dir points in the first test: a directory that holds a zigbee2mqtt install. */
const INSTALL_DIR = "/opt/zigbee2mqtt/app";

beforeAll(async () => {
  lab = await sharedLab();
  await freshNetwork(lab);
});

afterAll(async () => {
  await leaveNode1Active(lab);
});

async function ls(host: HostId, dir: string): Promise<string[]> {
  const out = await lab.execOk(host, ["find", dir, "-mindepth", "1", "-printf", "%P\\n"], { user: "zigbee" });
  return out.stdout.split("\n").filter(Boolean).sort();
}

async function zigbee2mqttPid(node: HostId): Promise<string> {
  return (await lab.execOk(node, ["cat", "/run/zigbee2mqtt.pid"])).stdout.trim();
}

describe("a standby whose data_dir is the zigbee2mqtt install dir", () => {
  let h: SidecarHandle;
  beforeAll(async () => {
    await lab.execOk(
      "node2",
      [
        "sh",
        "-c",
        'mkdir -p "$1/node_modules/zigbee-herdsman" && echo "require(1)" >"$1/index.js" && echo "{}" >"$1/package.json" && echo x >"$1/node_modules/zigbee-herdsman/index.js"',
        "z2mha-test",
        INSTALL_DIR,
      ],
      { user: "zigbee" },
    );
    h = await startSidecar(lab, { nodes: { node2: { data_dir: INSTALL_DIR } } });
  });
  afterAll(async () => {
    await h?.stop();
    await lab.exec("node2", ["rm", "-rf", INSTALL_DIR]);
  });

  it("is staged (staging is its own dir), but a switchover refuses to install into it, rolls back, and deletes nothing there", async () => {
    expect((await runWhenFree(h.api, "sync")).status).toBe("succeeded");
    const before = await ls("node2", INSTALL_DIR);
    const pid = await zigbee2mqttPid("node1");
    const op = await runWhenFree(h.api, "switchover", { target: "node2" });
    expect(op.status).toBe("rolled_back");
    expect(op.error?.step).toBe("verify NVRAM on node2 and write its data dir");
    expect(op.error?.message).toMatch(/looks like the zigbee2mqtt install dir, not its data dir/);
    expect(await ls("node2", INSTALL_DIR)).toEqual(before);
    expect(before).toEqual([
      "index.js",
      "node_modules",
      "node_modules/zigbee-herdsman",
      "node_modules/zigbee-herdsman/index.js",
      "package.json",
    ]);
    await lab.waitForZigbee2mqtt("node1");
    // The old active was stopped and started again by the rollback.
    expect(await zigbee2mqttPid("node1")).not.toBe(pid);
  });
});

describe("file names that shell tools misread", () => {
  let h: SidecarHandle;
  const names = ["--help", "-n", "a\rb", "c\\d", "sub dir/--x", "ünï cödé.yaml"];
  beforeAll(async () => {
    await leaveNode1Active(lab);
    h = await startSidecar(lab);
  });
  afterAll(async () => {
    await h?.stop();
    const dir = lab.node("node1").dataDir;
    for (const name of names)
      await lab.exec("node1", ["rm", "-f", "--", `${dir}/${name}`], { user: "zigbee" });
  });

  it("reach every standby byte for byte, and the new active's data dir after a switchover; no stray directories", async () => {
    const dir = lab.node("node1").dataDir;
    await lab.execOk("node1", ["mkdir", "-p", `${dir}/sub dir`], { user: "zigbee" });
    for (const [i, name] of names.entries())
      await lab.writeFile("node1", `${dir}/${name}`, `content ${i} of ${JSON.stringify(name)}\n`, {
        user: "zigbee",
      });
    const sync = await runWhenFree(h.api, "sync");
    expect(sync.status, JSON.stringify(sync.error)).toBe("succeeded");
    const current = `${lab.node("node2").stagingDir}/current`;
    const staged = await ls("node2", current);
    for (const [i, name] of names.entries()) {
      expect(staged).toContain(name);
      expect(await lab.readFile("node2", `${current}/${name}`)).toBe(
        `content ${i} of ${JSON.stringify(name)}\n`,
      );
    }
    // Nothing but the active's own files and the staging manifest: no directory made of a usage text.
    const source = new Set(await ls("node1", dir));
    expect(staged.filter((p) => !source.has(p))).toEqual([".z2mha-manifest.json"]);

    const op = await runWhenFree(h.api, "switchover", { target: "node2" });
    expect(op.status, JSON.stringify(op.error)).toBe("succeeded");
    const live = lab.node("node2").dataDir;
    for (const [i, name] of names.entries())
      expect(await lab.readFile("node2", `${live}/${name}`)).toBe(
        `content ${i} of ${JSON.stringify(name)}\n`,
      );
    const installed = await ls("node2", live);
    expect(installed.filter((p) => p.startsWith("-") || /usage|dirname/i.test(p))).toEqual(
      names.filter((n) => n.startsWith("-")).sort(),
    );
  });
});

describe("a takeover that fails before it touched anything", () => {
  let h: SidecarHandle;
  beforeAll(async () => {
    await leaveNode1Active(lab);
    h = await startSidecar(lab);
    expect((await runWhenFree(h.api, "sync")).status).toBe("succeeded");
  });
  afterAll(async () => {
    await lab.fault("fix-tools", "node2");
    await h?.stop();
  });

  it("a failed preflight ends failed: no rollback, and the running active is never stopped or started", async () => {
    await lab.fault("break-tools", "node2");
    const pid = await zigbee2mqttPid("node1");
    const op = await runWhenFree(h.api, "switchover", { target: "node2" });
    expect(op.status).toBe("failed");
    expect(op.steps.map((s) => [s.key, s.status])).toEqual([["preflight", "failed"]]);
    expect(op.steps.some((s) => s.rollback)).toBe(false);
    expect(await zigbee2mqttPid("node1")).toBe(pid);
    expect((await h.api.status()).active).toBe("node1");
  });
});

describe("a step cut short while a zigpy-znp tool runs", () => {
  let h: SidecarHandle;
  beforeAll(async () => {
    await leaveNode1Active(lab);
    h = await startSidecar(lab);
    expect((await runWhenFree(h.api, "sync")).status).toBe("succeeded");
  });
  afterAll(async () => {
    await lab.fault("tool-fault", "node1", { clear: true });
    await h?.stop();
    await leaveNode1Active(lab);
  });

  const toolsOn = async (node: HostId) =>
    (await lab.exec(node, ["pgrep", "-f", "zigpy_znp.tools.nvram_read"])).stdout
      .trim()
      .split("\n")
      .filter(Boolean);

  it("the sidecar stopped while nvram_read hangs on the old active: the abort ends the remote tool, none is left running", async () => {
    await lab.fault("tool-fault", "node1", { tool: "nvram_read", mode: "hang" });
    const started = await h.api.start("switchover", { target: "node2" });
    await h.api.waitFor("nvram_read running on node1", async () => {
      const op = await h.api.operation(started.id);
      const reading = op.steps.find((s) => s.key === "read-source-nvram" && s.status === "running");
      return reading && (await toolsOn("node1")).length > 0 ? true : undefined;
    });
    // SIGTERM: the runner aborts the step; the abort travels down the SSH channel (TERM, then KILL).
    await h.sidecar.stop("SIGTERM");
    expect(await toolsOn("node1")).toEqual([]);
    expect(h.sidecar.output()).toMatch(/sidecar stopped/);
  });
});
