/**
 * The lab's hosts behave like the prototype's machines: the controller reaches every node over ssh
 * as zigbee with its key, zigbee's sudo is exactly the service commands (docs/nodes.md's rule) and
 * the coordinator tools run without it, nodes
 * rsync to each other when they trust each other, traps reach the controller, the service command
 * has OpenRC's semantics, and lab traffic has nowhere to go but the lab.
 */
import { beforeAll, describe, expect, inject, it } from "vitest";
import { docBlock } from "./host/node-setup.js";
import { run, tryRun } from "./host/run.js";
import { Lab } from "./world.js";

let lab: Lab;

beforeAll(async () => {
  lab = await Lab.attach(inject("labName"));
});

describe("hosts", () => {
  it("the controller reaches every node over ssh as zigbee with its key, and each node is its own host", async () => {
    for (const id of lab.info.nodeIds) {
      const result = await lab.ssh(id, [
        "sh",
        "-c",
        'echo "$(id -un) $(hostname) $HOME"; ls -d /opt/zigbee2mqtt/data',
      ]);
      expect(result.code, result.stderr).toBe(0);
      expect(result.stdout).toBe(`zigbee ${id} /home/zigbee\n/opt/zigbee2mqtt/data\n`);
    }
    // The plain ssh client by host name works too (controller's /etc/hosts and known_hosts).
    const byName = await lab.exec("controller", [
      "ssh",
      "-i",
      lab.info.ssh.privateKey,
      "-o",
      `UserKnownHostsFile=${lab.info.controller.knownHosts}`,
      "-o",
      "BatchMode=yes",
      "zigbee@node2",
      "hostname",
    ]);
    expect(byName.stdout.trim()).toBe("node2");
    // Without the key there is no way in.
    const noKey = await lab.exec("controller", [
      "ssh",
      "-o",
      `UserKnownHostsFile=${lab.info.controller.knownHosts}`,
      "-o",
      "BatchMode=yes",
      "-o",
      "IdentitiesOnly=yes",
      "-i",
      "/dev/null",
      "zigbee@node1",
      "true",
    ]);
    expect(noKey.code).toBe(255);
  });

  it("each node has its own data dir, home, /run and dongle; the zigbee user exists only on the nodes", async () => {
    await lab.writeFile("node1", "/home/zigbee/only-on-node1", "1\n", { user: "zigbee" });
    expect((await lab.exec("node2", ["test", "-e", "/home/zigbee/only-on-node1"])).code).not.toBe(0);
    expect((await lab.exec("node1", ["stat", "-c", "%U %a", "/opt/zigbee2mqtt/data"])).stdout).toBe(
      "zigbee 755\n",
    );
    const tty = await lab.exec("node1", ["stat", "-L", "-c", "%A %G", "/dev/ttyUSB0"]);
    expect(tty.stdout).toBe("crw-rw---- dialout\n");
    expect((await lab.exec("node1", ["id", "-nG", "zigbee"])).stdout.trim().split(" ")).toContain("dialout");
    expect((await tryRun(["id", "zigbee"])).code).not.toBe(0);
    await lab.execOk("node1", ["rm", "/home/zigbee/only-on-node1"]);
  });

  it("zigbee's sudo allows the three service commands, nothing else; the tools run without it", async () => {
    expect(await lab.readFile("node2", "/etc/sudoers.d/zigbee2mqtt-ha")).toBe(
      /<<'EOF'\n([\s\S]*?\n)EOF\n/.exec(docBlock("sudoers-openrc"))?.[1],
    );
    const sudo = (argv: string[]) => lab.ssh("node2", ["sudo", "-n", ...argv]);
    expect((await sudo(["rc-service", "zigbee2mqtt", "status"])).stdout).toMatch(
      /status: (stopped|started|crashed)/,
    );
    // As zigbee, in dialout: the dongle opens without root.
    const help = await lab.ssh("node2", ["python3", "-m", "zigpy_znp.tools.nvram_read", "--help"]);
    expect(help.code, help.stderr).toBe(0);
    expect(help.stdout).toContain("usage");
    for (const denied of [
      ["ls", "/root"],
      ["python3", "-m", "zigpy_znp.tools.nvram_read", "--help"],
      ["python3", "-c", "print(1)"],
      ["rc-service", "zigbee2mqtt", "zap"],
      ["rc-service", "sshd", "stop"],
      ["rc-update", "add", "zigbee2mqtt", "default"],
      ["/bin/sh", "-c", "id"],
    ]) {
      const result = await sudo(denied);
      expect(result.code, denied.join(" ")).not.toBe(0);
      expect(result.stderr, denied.join(" ")).toMatch(/password is required|not allowed/);
    }
  });

  it("rsync between nodes works when the nodes trust each other's zigbee key (prototype style), not otherwise", async () => {
    await lab.writeFile("node1", "/home/zigbee/sync-me.txt", "hello from node1\n", { user: "zigbee" });
    const rsync = () =>
      lab.exec(
        "node1",
        [
          "rsync",
          "-a",
          "-e",
          "ssh -o BatchMode=yes",
          "/home/zigbee/sync-me.txt",
          "zigbee@node2:/home/zigbee/",
        ],
        {
          user: "zigbee",
        },
      );
    expect(lab.info.peerSsh).toBe(false);
    expect((await rsync()).code).not.toBe(0);
    await lab.setPeerSsh(true);
    try {
      const result = await rsync();
      expect(result.code, result.stderr).toBe(0);
      expect(await lab.readFile("node2", "/home/zigbee/sync-me.txt")).toBe("hello from node1\n");
    } finally {
      await lab.setPeerSsh(false);
    }
    await lab.execOk("node1", ["rm", "/home/zigbee/sync-me.txt"]);
    await lab.execOk("node2", ["rm", "/home/zigbee/sync-me.txt"]);
  });

  it("an SNMP trap sent to the controller appears in the trap log, decoded", async () => {
    const tag = `lab-trap-${Date.now()}`;
    const sent = await lab.exec("node1", [
      "snmptrap",
      "-v",
      "2c",
      "-c",
      "public",
      `${lab.info.controller.address}:162`,
      "",
      "1.3.6.1.6.3.1.1.5.1",
      "1.3.6.1.2.1.1.5.0",
      "s",
      tag,
    ]);
    expect(sent.code, sent.stderr).toBe(0);
    const trap = await waitForTrap(tag);
    expect(trap.trapOid).toBe("SNMPv2-MIB::coldStart");
    expect(trap.host).toBe("node1");
    expect(trap.varbinds).toContainEqual({ oid: "SNMPv2-MIB::sysName.0", value: tag });
    // The same from the root namespace, to the controller's link-local address.
    const tag2 = `${tag}-root`;
    await run([
      "snmptrap",
      "-v",
      "2c",
      "-c",
      "public",
      `${lab.info.controller.snmptrapd.host}:162`,
      "",
      "1.3.6.1.6.3.1.1.5.1",
      "1.3.6.1.2.1.1.5.0",
      "s",
      tag2,
    ]);
    expect((await waitForTrap(tag2)).transport).toContain(lab.info.linkLocal.root);
  });
});

async function waitForTrap(value: string) {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const trap = lab.traps().find((t) => t.varbinds.some((v) => v.value === value));
    if (trap) return trap;
    if (Date.now() > deadline) throw new Error(`no trap with ${value} in ${lab.info.controller.trapJson}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe("rc-service zigbee2mqtt, OpenRC style", () => {
  it("stopped → start (background, pidfile) → started; start again warns; stop → stopped; stop again warns", async () => {
    const node = "node1";
    await lab.stopZigbee2mqtt(node);
    const status = () => lab.service(node, "status");
    expect(await status()).toMatchObject({ code: 3, stdout: " * status: stopped\n" });
    const start = await lab.service(node, "start");
    expect(start.code).toBe(0);
    expect((await status()).code).toBe(0);
    const pid = (await lab.execOk(node, ["cat", "/run/zigbee2mqtt.pid"])).stdout.trim();
    expect((await lab.execOk(node, ["ps", "-o", "user=,args=", "-p", pid])).stdout).toMatch(
      /^zigbee +\/usr\/bin\/node .*zigbee2mqtt\/index\.js/,
    );
    const again = await lab.service(node, "start");
    expect(again).toMatchObject({ code: 0 });
    expect(again.stdout).toContain("already been started");
    await lab.waitForZigbee2mqtt(node);

    const stop = await lab.service(node, "stop");
    expect(stop.code).toBe(0);
    expect(await status()).toMatchObject({ code: 3 });
    expect((await lab.exec(node, ["kill", "-0", pid])).code).not.toBe(0);
    expect((await lab.service(node, "stop")).stdout).toContain("already stopped");
    await lab.startZigbee2mqtt(node);
  });

  it("a killed daemon is crashed (32); start then only warns, as OpenRC does; restart recovers it", async () => {
    const node = "node1";
    if ((await lab.service(node, "status")).code !== 0) await lab.startZigbee2mqtt(node);
    await lab.fault("kill-zigbee2mqtt", node);
    expect(await lab.service(node, "status")).toMatchObject({ code: 32, stdout: " * status: crashed\n" });
    expect((await lab.service(node, "start")).stdout).toContain("already been started");
    expect((await lab.service(node, "status")).code).toBe(32);
    expect((await lab.service(node, "restart")).code).toBe(0);
    await lab.waitForZigbee2mqtt(node);
    expect((await lab.service(node, "status")).code).toBe(0);
  });

  it("only root may start or stop; anyone may ask for the status; unknown services and verbs are refused", async () => {
    const asZigbee = (argv: string[]) => lab.exec("node2", argv, { user: "zigbee" });
    expect((await asZigbee(["rc-service", "zigbee2mqtt", "start"])).stderr).toContain("must be root");
    expect((await asZigbee(["rc-service", "zigbee2mqtt", "status"])).code).toBe(3);
    expect((await lab.exec("node2", ["rc-service", "sshd", "start"])).stderr).toContain("does not exist");
    expect((await lab.exec("node2", ["rc-service", "zigbee2mqtt", "explode"])).code).toBe(1);
  });
});

describe("the lab network stays in the lab", () => {
  it("no host has a default route; nothing forwards; the root namespace reaches the controller only", async () => {
    for (const host of ["controller", ...lab.info.nodeIds] as const) {
      const routes = await lab.execOk(host as "controller", ["ip", "route"]);
      expect(routes.stdout, host).not.toMatch(/default/);
      expect((await lab.execOk(host as "controller", ["cat", "/proc/sys/net/ipv4/ip_forward"])).stdout).toBe(
        "0\n",
      );
    }
    // Outside addresses (this machine's own gateway, a public one) are unreachable from every host.
    for (const host of ["controller", "node1"] as const) {
      for (const outside of ["192.0.2.1", "1.1.1.1"]) {
        const lookup = await lab.exec(host, ["ip", "route", "get", outside]);
        expect(lookup.code, `${host} → ${outside}`).not.toBe(0);
        expect(lookup.stderr).toMatch(/unreachable/);
      }
    }
    // The root namespace has a route to the controller's /30 only; lab addresses are not routed into the lab.
    const rootRoutes = (await run(["ip", "route"])).stdout;
    expect(rootRoutes).not.toContain(lab.info.subnet);
    const viaLab = await run(["ip", "route", "get", lab.node("node1").address]);
    expect(viaLab.stdout).not.toContain(lab.info.linkLocal.rootInterface);
    const toController = await tryRun([
      "/usr/bin/python3",
      "-c",
      "import socket,sys; socket.create_connection((sys.argv[1], 1883), 2)",
      lab.info.linkLocal.controller,
    ]);
    expect(toController.code).toBe(0);
  });

  it("exec passes arguments as they are: no shell sees them", async () => {
    const odd = ["$(id)", "a b", "'", '"', ";true", "*"];
    const result = await lab.execOk("node1", ["printf", "%s\\n", ...odd]);
    expect(result.stdout).toBe(`${odd.join("\n")}\n`);
    const viaSsh = await lab.ssh("node1", ["printf", "%s\\n", ...odd]);
    expect(viaSsh.stdout).toBe(`${odd.join("\n")}\n`);
  });
});

describe("the sidecar in the lab", () => {
  it("a generated config starts the real sidecar in the controller; its API answers from the root namespace", async () => {
    const config = lab.sidecarConfig({ server: { port: 8490 }, nodes: { node2: { priority: 50 } } });
    const sidecar = await lab.startSidecar(config);
    try {
      expect(sidecar.url).toBe(`http://${lab.info.linkLocal.controller}:8490`);
      const unauthorized = await fetch(`${sidecar.url}/api/v1/info`);
      expect(unauthorized.status).toBe(401);
      const info = await fetch(`${sidecar.url}/api/v1/info`, {
        headers: { authorization: `Bearer ${sidecar.token}` },
      });
      expect(info.status).toBe(200);
      expect(await info.json()).toMatchObject({ cluster_name: `lab-${lab.name}`, nodes: lab.info.nodeIds });
    } finally {
      expect(await sidecar.stop()).toBe(0);
    }
    expect(() => lab.sidecarConfig({ nodes: { node7: {} } })).toThrow(/no node node7/);
  });
});
