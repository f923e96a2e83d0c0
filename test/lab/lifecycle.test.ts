/**
 * The lab's own life: `up` brings a world with zigbee2mqtt online on node1, a second `up` changes
 * nothing, and `down` leaves nothing behind: not after a clean run, not after a test that broke
 * things and never cleaned up, not after an `up` killed half-way. Uses instances of its own.
 */
import { spawn } from "node:child_process";
import { existsSync, readdirSync, readlinkSync, statSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { layout, RUN_BASE } from "./host/layout.js";
import { run, waitFor } from "./host/run.js";
import { Lab, REPO } from "./world.js";

const NAME = "z2mhalc";
const KILLED = "z2mhakill";
const DEMO = "z2mhademo";

/** Inodes of every namespace an instance has (network namespaces and the hosts' PID/mount/UTS ones). */
function namespaceInodes(name: string): Set<number> {
  const inodes = new Set<number>();
  for (const entry of existsSync("/run/netns") ? readdirSync("/run/netns") : []) {
    if (entry.startsWith(`${name}-`)) inodes.add(statSync(join("/run/netns", entry)).ino);
  }
  const nsDir = layout(name).nsDir;
  for (const entry of existsSync(nsDir) ? readdirSync(nsDir) : []) {
    const ino = statSync(join(nsDir, entry)).ino;
    // An unbound placeholder file is a regular file on the run dir's filesystem, not a namespace.
    if (statSync(join(nsDir, entry)).dev !== statSync(nsDir).dev) inodes.add(ino);
  }
  return inodes;
}

/** Pids of processes living in any of these namespaces. */
function processesIn(inodes: Set<number>): number[] {
  const pids: number[] = [];
  for (const pid of readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
    for (const kind of ["net", "mnt", "pid", "uts"]) {
      try {
        const ino = Number(/\[(\d+)\]/.exec(readlinkSync(`/proc/${pid}/ns/${kind}`))?.[1]);
        if (inodes.has(ino)) {
          pids.push(Number(pid));
          break;
        }
      } catch {
        // exited meanwhile
      }
    }
  }
  return pids;
}

/** The root namespace's interfaces and addresses, to compare before and after. */
async function rootAddresses(): Promise<string[]> {
  const links = JSON.parse((await run(["ip", "-j", "addr", "show"])).stdout) as {
    ifname: string;
    addr_info: { local: string; prefixlen: number }[];
  }[];
  return links
    .flatMap((l) => [l.ifname, ...l.addr_info.map((a) => `${l.ifname} ${a.local}/${a.prefixlen}`)])
    .sort();
}

/** Everything of an instance still visible from the root namespace. */
async function leftovers(name: string, inodes: Set<number>) {
  const netns = (await run(["ip", "netns", "list"])).stdout
    .split("\n")
    .map((l) => l.split(" ")[0]!)
    .filter((n) => n.startsWith(`${name}-`));
  const mounts = (await run(["findmnt", "-rn", "-o", "TARGET"])).stdout
    .split("\n")
    .filter((t) => t.startsWith(layout(name).runDir));
  const link = (await run(["ip", "-o", "link", "show"])).stdout.includes(`${name}-ll`);
  return {
    netns,
    mounts,
    link,
    runDir: existsSync(layout(name).runDir),
    processes: processesIn(inodes),
  };
}

const nothing = { netns: [], mounts: [], link: false, runDir: false, processes: [] };

afterAll(async () => {
  await Lab.destroy(NAME);
  await Lab.destroy(KILLED);
  await Lab.destroy(DEMO);
});

describe("the lab's life cycle", () => {
  it("up brings node1's zigbee2mqtt online on MQTT with its frontend host and the dongle's IEEE; a second up changes nothing", async () => {
    const addressesBefore = await rootAddresses();
    const lab = await Lab.up({ name: NAME, nodes: 2 });
    const info = lab.info;

    const bridge = await lab.bridge();
    expect(bridge.state).toBe("online");
    expect(bridge.info?.config?.frontend?.host).toBe(info.nodes.node1!.address);
    expect(bridge.info?.coordinator?.ieee_address).toBe(`0x${info.nodes.node1!.ieee}`);
    expect((await lab.simulator("node1").status()).configured).toBe(true);
    expect((await lab.simulator("node2").status()).configured).toBe(false);
    expect((await lab.service("node2", "status")).code).toBe(3);
    // The way the issue reads the bridge: from the controller, on its loopback.
    const sub = await lab.exec("controller", [
      "mosquitto_sub",
      "-h",
      "127.0.0.1",
      "-t",
      "zigbee2mqtt/bridge/state",
      "-C",
      "1",
      "-W",
      "10",
    ]);
    expect(JSON.parse(sub.stdout)).toEqual({ state: "online" });

    // The root namespace gained exactly one interface, the controller's link-local /30, nothing else.
    const addressesUp = await rootAddresses();
    expect(addressesUp.filter((a) => !addressesBefore.includes(a))).toEqual([
      `${NAME}-ll`,
      `${NAME}-ll ${info.linkLocal.root}/30`,
    ]);

    const pid = (await lab.execOk("node1", ["cat", "/run/zigbee2mqtt.pid"])).stdout;
    const again = await Lab.up({ name: NAME, nodes: 2 });
    expect(again.info).toEqual(info);
    expect((await again.execOk("node1", ["cat", "/run/zigbee2mqtt.pid"])).stdout).toBe(pid);
    await expect(Lab.up({ name: NAME, nodes: 3 })).rejects.toThrow(/take it down first/);

    const inodes = namespaceInodes(NAME);
    expect(processesIn(inodes).length).toBeGreaterThan(5);
    await lab.down();
    expect(await leftovers(NAME, inodes)).toEqual(nothing);
    expect(await rootAddresses()).toEqual(addressesBefore);
  });

  it("down after a test that broke everything and never cleaned up still leaves nothing", async () => {
    const lab = await Lab.up({ name: NAME, nodes: 2 });
    await lab.fault("cut-link", "node1");
    await lab.fault("netem", "node2", { delay: 100, loss: 5 });
    await lab.fault("fill-disk", "node2");
    await lab.fault("fill-disk", "node2", { disk: "home" });
    await lab.fault("stop-sshd", "node2");
    await lab.fault("unplug", "node2");
    await lab.fault("change-host-key", "node1");
    const sidecar = await lab.startSidecar(lab.sidecarConfig({ server: { port: 8486 } }));
    expect(sidecar.token.length).toBeGreaterThan(10);
    const inodes = namespaceInodes(NAME);

    // The test "fails" here: nothing is undone; the next run (or the global teardown) calls down.
    await Lab.destroy(NAME);
    expect(await leftovers(NAME, inodes)).toEqual(nothing);
  });

  it("down after an up that was killed half-way leaves nothing", async () => {
    const child = spawn(process.execPath, ["--import", "tsx", "test/lab/cli.ts", "--name", KILLED, "up"], {
      cwd: REPO,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => {
      output += chunk.toString();
    });
    const exited = new Promise((resolve) => child.on("exit", resolve));
    // Killed while the dongles and daemons start, with namespaces, mounts and processes in place.
    await waitFor(
      "the killed up to create its hosts",
      async () => (output.includes("hosts created") ? true : undefined),
      {
        timeout: 60_000,
        interval: 50,
      },
    );
    child.kill("SIGKILL");
    await exited;
    const inodes = namespaceInodes(KILLED);
    expect(inodes.size).toBeGreaterThan(0);
    await expect(Lab.attach(KILLED)).rejects.toThrow(/not completely up/);

    await Lab.destroy(KILLED);
    expect(await leftovers(KILLED, inodes)).toEqual(nothing);
    expect(existsSync(join(RUN_BASE, `.${KILLED}.lock`))).toBe(false);
  });

  it("npm run demo: the lab and the sidecar up, URL and token printed; Ctrl-C stops both and takes the lab down", async () => {
    const child = spawn(
      process.execPath,
      ["--import", "tsx", "test/lab/demo.ts", "--name", DEMO, "--port", "8491"],
      {
        cwd: REPO,
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    let output = "";
    for (const stream of [child.stdout, child.stderr]) {
      stream.on("data", (chunk: Buffer) => {
        output += chunk.toString();
      });
    }
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    const printed = await waitFor(
      "the demo to print its URL and token",
      async () => {
        const url = /^API: (http:\/\/[0-9.]+:8491)$/m.exec(output)?.[1];
        const token = /^token: (\S+)$/m.exec(output)?.[1];
        return url && token ? { url, token } : undefined;
      },
      { timeout: 120_000 },
    );
    const info = await fetch(`${printed.url}/api/v1/info`, {
      headers: { authorization: `Bearer ${printed.token}` },
    });
    expect(info.status).toBe(200);
    expect(await info.json()).toMatchObject({ cluster_name: `lab-${DEMO}`, nodes: ["node1", "node2"] });
    // The URL comes once the demo is protected: a standby is ready, so a switchover now succeeds.
    expect(output).toMatch(/^protected: node2 is ready to take over from node1/m);
    const status = await fetch(`${printed.url}/api/v1/status`, {
      headers: { authorization: `Bearer ${printed.token}` },
    });
    expect(((await status.json()) as { protection: { protected: boolean } }).protection.protected).toBe(true);
    const inodes = namespaceInodes(DEMO);

    child.kill("SIGINT");
    expect(await exited).toBe(0);
    expect(output).toContain(`lab ${DEMO} is down`);
    expect(await leftovers(DEMO, inodes)).toEqual(nothing);
  });
});
