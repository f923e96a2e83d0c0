/**
 * Every fault the lab offers does what it says to the host, shows in `status`, and is undone by its
 * undo. The observations are the ones the product will make: ssh, MQTT, the service, the disk, the
 * dongle.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { waitFor } from "./host/run.js";
import { type FaultKind, type HostId, Lab } from "./world.js";

let lab: Lab;

beforeAll(async () => {
  lab = await Lab.attach(inject("labName"));
  if ((await lab.service("node1", "status")).code !== 0) {
    await lab.stopZigbee2mqtt("node1");
    await lab.startZigbee2mqtt("node1");
  }
});

afterAll(async () => {
  // Whatever a failed test left broken is mended for the next file.
  for (const [kind, host] of [
    ["restore-link", "node1"],
    ["restore-link", "node2"],
    ["start-sshd", "node2"],
    ["restore-host-key", "node2"],
    ["free-disk", "node2"],
    ["replug", "node2"],
    ["fix-tools", "node2"],
    ["start-mqtt", "controller"],
  ] as const) {
    await lab.fault(kind, host).catch(() => {});
  }
  await lab.fault("netem", "node2", { clear: true }).catch(() => {});
  await lab.fault("tool-fault", "node2", { clear: true }).catch(() => {});
  await lab.fault("start-zigbee2mqtt", "node1").catch(() => {});
});

async function faultsOf(host: string): Promise<string[]> {
  return (await lab.status()).faults.filter((f) => f.host === host).map((f) => f.kind);
}

async function sshWorks(node: string): Promise<boolean> {
  return (await lab.ssh(node, ["true"])).code === 0;
}

/** Milliseconds a TCP connect from the controller to a node's sshd takes, or undefined if it fails. */
async function connectTime(node: string): Promise<number | undefined> {
  const result = await lab.exec("controller", [
    "/usr/bin/python3",
    "-c",
    "import socket,sys,time\nt=time.monotonic()\nsocket.create_connection((sys.argv[1],22),2).close()\nprint(int((time.monotonic()-t)*1000))",
    lab.node(node).address,
  ]);
  return result.code === 0 ? Number(result.stdout.trim()) : undefined;
}

describe("faults", () => {
  it("kill-zigbee2mqtt: SIGKILL, the pidfile stays, status says crashed, the broker says offline; start-zigbee2mqtt brings it back", async () => {
    await lab.fault("kill-zigbee2mqtt", "node1");
    const status = await lab.service("node1", "status");
    expect(status.code).toBe(32);
    expect(status.stdout).toContain("crashed");
    expect((await lab.exec("node1", ["test", "-s", "/run/zigbee2mqtt.pid"])).code).toBe(0);
    await lab.waitForBridge((b) => b.state === "offline", { timeout: 30_000, what: "the last will" });

    await lab.fault("start-zigbee2mqtt", "node1");
    await lab.waitForZigbee2mqtt("node1");
    expect((await lab.service("node1", "status")).code).toBe(0);
  });

  it("stop-sshd / start-sshd: ssh to the node is refused, then works again", async () => {
    expect(await sshWorks("node2")).toBe(true);
    await lab.fault("stop-sshd", "node2");
    const refused = await lab.ssh("node2", ["true"]);
    expect(refused.code).toBe(255);
    expect(refused.stderr).toMatch(/Connection refused/);
    expect(await faultsOf("node2")).toContain("stop-sshd");
    await lab.fault("start-sshd", "node2");
    expect(await sshWorks("node2")).toBe(true);
    expect(await faultsOf("node2")).not.toContain("stop-sshd");
  });

  it("cut-link / restore-link: the node vanishes for ssh and MQTT both ways while its processes run on", async () => {
    const before = (await lab.execOk("node1", ["cat", "/run/zigbee2mqtt.pid"])).stdout.trim();
    await lab.fault("cut-link", "node1");
    try {
      expect(await faultsOf("node1")).toContain("cut-link");
      expect(await sshWorks("node1")).toBe(false);
      const publish = await lab.exec(
        "node1",
        ["mosquitto_pub", "-h", lab.info.controller.address, "-t", "lab/cut", "-m", "x"],
        { timeout: 8_000 },
      );
      expect(publish.code !== 0 || publish.timedOut).toBe(true);
      // A pulled cable, not a power cut: zigbee2mqtt still runs, same process.
      expect((await lab.service("node1", "status")).code).toBe(0);
      expect((await lab.execOk("node1", ["cat", "/run/zigbee2mqtt.pid"])).stdout.trim()).toBe(before);
    } finally {
      await lab.fault("restore-link", "node1");
    }
    expect(await faultsOf("node1")).not.toContain("cut-link");
    expect(await sshWorks("node1")).toBe(true);
    await lab.waitForZigbee2mqtt("node1");
  });

  it("netem: --delay slows every packet the node sends, --loss 100 drops all, --clear restores", async () => {
    expect(await connectTime("node2")).toBeDefined();
    await lab.fault("netem", "node2", { delay: 300 });
    expect(await faultsOf("node2")).toContain("netem");
    expect(await connectTime("node2")).toBeGreaterThanOrEqual(300);

    await lab.fault("netem", "node2", { loss: 100 });
    expect(await connectTime("node2")).toBeUndefined();

    await lab.fault("netem", "node2", { clear: true });
    expect(await connectTime("node2")).toBeDefined();
    expect(await faultsOf("node2")).not.toContain("netem");
    await expect(lab.fault("netem", "node2", { loss: 150 })).rejects.toThrow(/percentage/);
  });

  it("fill-disk / free-disk: the data dir's and the home's tmpfs are full, then free", async () => {
    const write = (dir: string) =>
      lab.exec("node2", ["dd", "if=/dev/zero", `of=${dir}/probe`, "bs=64k", "count=4"], { user: "zigbee" });
    await lab.fault("fill-disk", "node2");
    await lab.fault("fill-disk", "node2", { disk: "home" });
    const data = await write("/opt/zigbee2mqtt/data");
    expect(data.code).not.toBe(0);
    expect(data.stderr).toMatch(/No space left/);
    expect((await write("/home/zigbee")).code).not.toBe(0);
    expect((await lab.status()).faults).toEqual(
      expect.arrayContaining([
        { host: "node2", kind: "fill-disk", detail: "data" },
        { host: "node2", kind: "fill-disk", detail: "home" },
      ]),
    );
    await lab.fault("free-disk", "node2");
    expect((await write("/opt/zigbee2mqtt/data")).code).toBe(0);
    expect((await write("/home/zigbee")).code).toBe(0);
    await lab.execOk("node2", ["rm", "-f", "/opt/zigbee2mqtt/data/probe", "/home/zigbee/probe"]);
    expect(await faultsOf("node2")).not.toContain("fill-disk");
  });

  it("change-host-key / restore-host-key: ssh pinned to the old key refuses the node, then accepts it again", async () => {
    const original = lab.node("node2").ssh.originalHostKeyFingerprint;
    await lab.fault("change-host-key", "node2");
    const changed = lab.node("node2").ssh.hostKeyFingerprint;
    expect(changed).not.toBe(original);
    const refused = await lab.ssh("node2", ["true"]);
    expect(refused.code).toBe(255);
    expect(refused.stderr).toMatch(/REMOTE HOST IDENTIFICATION HAS CHANGED|Host key verification failed/);
    const scanned = await lab.exec("controller", [
      "sh",
      "-c",
      'ssh-keyscan -t ed25519 "$1" 2>/dev/null | ssh-keygen -lf - -E sha256',
      "sh",
      lab.node("node2").address,
    ]);
    expect(scanned.stdout).toContain(changed);
    expect(await faultsOf("node2")).toContain("change-host-key");

    await lab.fault("restore-host-key", "node2");
    expect(lab.node("node2").ssh.hostKeyFingerprint).toBe(original);
    expect(await sshWorks("node2")).toBe(true);
  });

  it("unplug / replug: the dongle and /dev/ttyUSB0 are gone and the tools fail; back, they work", async () => {
    await lab.fault("unplug", "node2");
    expect((await lab.simulator("node2").status()).unplugged).toBe(true);
    expect((await lab.exec("node2", ["test", "-e", "/dev/ttyUSB0"])).code).not.toBe(0);
    expect((await lab.znp("node2", "nvram_read", ["-o", "/home/zigbee/unplugged.json"])).code).not.toBe(0);
    expect(await faultsOf("node2")).toContain("unplug");

    await lab.fault("replug", "node2");
    expect((await lab.simulator("node2").status()).unplugged).toBe(false);
    expect((await lab.exec("node2", ["test", "-e", "/dev/ttyUSB0"])).code).toBe(0);
    expect((await lab.znp("node2", "nvram_read", ["-o", "/home/zigbee/replugged.json"])).code).toBe(0);
    expect(await faultsOf("node2")).not.toContain("unplug");
  });

  it("break-tools / fix-tools: the node's python3 has no zigpy-znp, then has it again", async () => {
    await lab.fault("break-tools", "node2");
    const broken = await lab.znp("node2", "nvram_read", ["--help"]);
    expect(broken.code).not.toBe(0);
    expect(broken.stderr).toMatch(/No module named 'zigpy_znp'/);
    // Only the tools: python3 itself and everything else on the node still work.
    expect((await lab.exec("node2", ["python3", "-c", "print(6 * 7)"])).stdout.trim()).toBe("42");
    expect(await faultsOf("node2")).toContain("break-tools");

    await lab.fault("fix-tools", "node2");
    expect((await lab.znp("node2", "nvram_read", ["--help"])).code).toBe(0);
    expect(await faultsOf("node2")).not.toContain("break-tools");
  });

  it("tool-fault: one zigpy-znp tool fails (dongle untouched) or corrupts its output, for N runs or until cleared", async () => {
    const before = await lab.simulator("node2").nvram();
    await lab.fault("tool-fault", "node2", { tool: "nvram_write", mode: "fail", times: 1 });
    expect((await lab.status()).faults).toContainEqual({
      host: "node2",
      kind: "tool-fault",
      detail: "nvram_write fail (1 more run)",
    });
    const failed = await lab.znp("node2", "nvram_write", ["-i", "/nonexistent.json"]);
    expect(failed.code).toBe(1);
    expect(failed.stderr).toMatch(/lab tool-fault: nvram_write fails on purpose/);
    expect(await lab.simulator("node2").nvram()).toEqual(before);
    expect(await faultsOf("node2")).not.toContain("tool-fault");
    // Its one run used up: the real tool runs again (and fails on the missing file, as it should).
    expect((await lab.znp("node2", "nvram_write", ["-i", "/nonexistent.json"])).stderr).toMatch(
      /No such file or directory/,
    );
    // Other tools are not affected.
    await lab.fault("tool-fault", "node2", { tool: "nvram_read", mode: "corrupt" });
    expect((await lab.znp("node2", "nvram_reset", ["--help"])).code).toBe(0);
    const out = `${lab.node("node2").homeDir}/lab-nvram.json`;
    for (let run = 0; run < 2; run++) {
      expect((await lab.znp("node2", "nvram_read", ["-o", out])).code).toBe(0);
      const text = await lab.readFile("node2", out);
      expect(() => JSON.parse(text)).toThrow();
      expect(text).toBe(JSON.stringify(before, null, 4).slice(0, text.length));
    }
    expect(await faultsOf("node2")).toContain("tool-fault");
    await lab.fault("tool-fault", "node2", { clear: true });
    expect(await faultsOf("node2")).not.toContain("tool-fault");
    expect((await lab.znp("node2", "nvram_read", ["-o", out])).code).toBe(0);
    expect(JSON.parse(await lab.readFile("node2", out))).toEqual(before);
    await lab.exec("node2", ["rm", "-f", out]);
  });

  it("power-cycle-dongle: the dongle resets and keeps its NVRAM", async () => {
    const before = await lab.simulator("node2").nvram();
    await lab.fault("power-cycle-dongle", "node2");
    const status = await lab.simulator("node2").status();
    expect(status.state).toBe("hold");
    expect(await lab.simulator("node2").nvram()).toEqual(before);
  });

  it("stop-mqtt / start-mqtt: the broker is gone, then back, and zigbee2mqtt reconnects", async () => {
    const connections = async () =>
      (await lab.zigbee2mqttLog("node1", 100_000)).split("Connected to MQTT server").length;
    const before = await connections();
    await lab.fault("stop-mqtt", "controller");
    await expect(lab.mqtt()).rejects.toThrow();
    expect(await faultsOf("controller")).toContain("stop-mqtt");
    await lab.fault("start-mqtt", "controller");
    const client = await lab.mqtt();
    await client.endAsync();
    await waitFor(
      "zigbee2mqtt to reconnect",
      async () => ((await connections()) > before ? true : undefined),
      {
        timeout: 90_000,
        interval: 500,
      },
    );
    // Retained messages survived the restart (persistence), and zigbee2mqtt is online again.
    await lab.waitForZigbee2mqtt("node1");
  });

  it("refuses faults on hosts they do not apply to, and unknown kinds", async () => {
    await expect(lab.fault("stop-sshd", "controller")).rejects.toThrow(/nodes/);
    await expect(lab.fault("stop-mqtt", "node1")).rejects.toThrow(/controller/);
    await expect(lab.fault("melt" as FaultKind, "node1")).rejects.toThrow(/unknown fault/);
    await expect(lab.fault("cut-link", "node9" as HostId)).rejects.toThrow(/no host node9/);
  });
});
