/**
 * `z2m-ha doctor` against the lab's real nodes (sshd, sudo with docs/nodes.md's rule, the
 * zigpy-znp tools, OpenRC stand-ins, the simulated dongles): a node set up as docs/nodes.md says
 * passes; broken the ways users break them, each problem is named with its fix.
 */
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { DoctorReport } from "../../sidecar/cli/doctor.js";
import type { CheckResult } from "../../sidecar/node/node-checks.js";
import { sharedLab } from "./sidecar-harness.js";
import { type Lab, REPO } from "./world.js";

let lab: Lab;
let config: string;
const BROAD_SUDOERS = "/etc/sudoers.d/zz-prototype";

async function doctor(args: string[], file = config) {
  const result = await lab.exec(
    "controller",
    [process.execPath, join(REPO, "dist", "cli.js"), "doctor", "--config", file, ...args],
    { timeout: 120_000 },
  );
  return result;
}

async function report(node: string, file = config): Promise<{ code: number | null; checks: CheckResult[] }> {
  const result = await doctor(["--json", "--node", node], file);
  const parsed = JSON.parse(result.stdout) as DoctorReport;
  return { code: result.code, checks: parsed.nodes[node]?.checks ?? [] };
}

function byId(checks: CheckResult[], id: string): CheckResult {
  const check = checks.find((c) => c.id === id);
  if (!check) throw new Error(`no check ${id} in ${checks.map((c) => c.id).join(", ")}`);
  return check;
}

async function undoAll(): Promise<void> {
  await lab.exec("node2", ["rm", "-f", BROAD_SUDOERS]);
  await lab.exec("node2", ["rc-update", "del", "zigbee2mqtt", "default"]);
  await lab.fault("fix-tools", "node2");
  await lab.fault("replug", "node2");
  await lab.fault("fix-clock", "node2");
}

beforeAll(async () => {
  lab = await sharedLab();
  await undoAll();
  config = lab.sidecarConfig();
});

afterAll(async () => {
  await undoAll();
});

describe("z2m-ha doctor", () => {
  it("a node set up as docs/nodes.md says passes every check; only its /dev/ttyUSB0 path is a warning", async () => {
    const { code, checks } = await report("node2");
    expect(code).toBe(0);
    const failed = checks.filter((c) => !c.ok);
    expect(failed.map((c) => `${c.id}: ${c.detail}`)).toEqual([expect.stringMatching(/^port\.by-id: /)]);
    expect(byId(checks, "port.by-id").severity).toBe("warning");
    for (const id of [
      "ssh",
      "sudo.service",
      "sudo.scope",
      "service.status",
      "service.boot",
      "tools",
      "port",
      "port.access",
      "data-dir",
      "adapter",
      "port.match",
      "broker",
      "staging-dir",
      "disk.data-dir",
      "disk.staging-dir",
      "clock",
      "zigbee2mqtt.version",
    ]) {
      expect(byId(checks, id).ok, id).toBe(true);
    }
    expect(byId(checks, "ssh").detail).toContain(lab.node("node2").ssh.originalHostKeyFingerprint);
    expect(byId(checks, "tools").detail).toContain("zigpy-znp 1.1.1");
    expect(byId(checks, "zigbee2mqtt.version").detail).toContain(`zigbee2mqtt ${lab.info.z2m.version}`);
    expect(byId(checks, "broker").detail).toContain(`${lab.info.controller.address}:1883`);
  });

  it("tools missing, service enabled at boot, port missing, sudo too broad, clock skewed: each named, with its fix", async () => {
    await lab.fault("break-tools", "node2");
    await lab.execOk("node2", ["rc-update", "add", "zigbee2mqtt", "default"]);
    await lab.fault("unplug", "node2");
    await lab.writeFile(
      "node2",
      BROAD_SUDOERS,
      "zigbee ALL=(root) NOPASSWD: /sbin/rc-service zigbee2mqtt *, /usr/local/bin/python3 -m zigpy_znp.tools.*\n",
      { mode: "0440" },
    );
    await lab.fault("skew-clock", "node2", { seconds: 120 });

    const { code, checks } = await report("node2");
    expect(code).toBe(1);
    const tools = byId(checks, "tools");
    expect(tools).toMatchObject({ ok: false, severity: "error" });
    expect(tools.detail).toMatch(/No module named 'zigpy_znp'/);
    expect(tools.fix).toMatch(/install zigpy-znp/);

    const boot = byId(checks, "service.boot");
    expect(boot).toMatchObject({ ok: false, severity: "error" });
    expect(boot.detail).toMatch(/runlevel default: it starts at boot/);
    expect(boot.fix).toBe("as root on the node: rc-update del zigbee2mqtt default");

    const port = byId(checks, "port");
    expect(port).toMatchObject({ ok: false, severity: "error" });
    expect(port.detail).toMatch(/\/dev\/ttyUSB0 does not exist/);
    expect(port.fix).toMatch(/serial\/by-id/);

    const scope = byId(checks, "sudo.scope");
    expect(scope).toMatchObject({ ok: false, severity: "error" });
    expect(scope.detail).toMatch(/zigpy_znp.*-o FILE writes any file as root/);
    expect(scope.detail).toMatch(/rc-service zigbee2mqtt \* \(a wildcard/);
    expect(scope.fix).toContain(
      "zigbee ALL=(root) NOPASSWD: /sbin/rc-service zigbee2mqtt start, /sbin/rc-service zigbee2mqtt stop, /sbin/rc-service zigbee2mqtt status",
    );

    const clock = byId(checks, "clock");
    expect(clock).toMatchObject({ ok: false, severity: "error" });
    expect(clock.detail).toMatch(/clock is \+1[12]\d\.\d s off/);
    expect(clock.fix).toMatch(/NTP/);

    // What was not broken still passes.
    for (const id of ["ssh", "sudo.service", "service.status", "data-dir", "staging-dir", "adapter"])
      expect(byId(checks, id).ok, id).toBe(true);

    // The same for a person: each failure on its line, the fix under it; exit status 1.
    const human = await doctor(["--node", "node2"]);
    expect(human.code).toBe(1);
    expect(human.stdout).toMatch(/FAIL {2}service\.boot +zigbee2mqtt is in the OpenRC runlevel default/);
    expect(human.stdout).toMatch(/\n +fix: as root on the node: rc-update del zigbee2mqtt default\n/);
    expect(human.stdout).toMatch(/FAIL {2}tools /);
    expect(human.stdout).toMatch(/errors found/);

    await undoAll();
    const again = await report("node2");
    expect(again.code).toBe(0);
  });

  it("a config that runs the tools through sudo fails sudo.scope with the way out", async () => {
    const sudoTools = lab.sidecarConfig({
      nodes: { node2: { coordinator: { tools: ["sudo", "python3", "-m", "zigpy_znp.tools"] } } },
    });
    const { code, checks } = await report("node2", sudoTools);
    expect(code).toBe(1);
    const scope = byId(checks, "sudo.scope");
    expect(scope).toMatchObject({ ok: false, severity: "error" });
    expect(scope.detail).toMatch(/coordinator.tools runs the zigpy-znp tools as root/);
    expect(scope.fix).toMatch(
      /set coordinator.tools to python3 -m zigpy_znp.tools and add zigbee to dialout/,
    );
    // With sudo the tools do not even run: docs/nodes.md's rule does not allow them.
    expect(byId(checks, "tools").ok).toBe(false);
  });

  it("a changed host key fails ssh before anything else, naming the way to verify it", async () => {
    await lab.fault("change-host-key", "node3");
    try {
      const { code, checks } = await report("node3");
      expect(code).toBe(1);
      expect(checks).toHaveLength(1);
      expect(checks[0]).toMatchObject({ id: "ssh", ok: false, severity: "error" });
      expect(checks[0]?.detail).toMatch(/host key mismatch/);
      expect(checks[0]?.fix).toMatch(/ssh-keygen -lf \/etc\/ssh\/ssh_host_ed25519_key.pub/);
    } finally {
      await lab.fault("restore-host-key", "node3");
    }
  });

  it("an unknown --node is a usage error (exit 2)", async () => {
    const result = await doctor(["--node", "node9"]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/no node node9 in the config/);
  });
});
