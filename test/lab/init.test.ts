/**
 * `z2m-ha init --non-interactive` against the lab's real nodes, as a new user would run it on the
 * controller: the first run makes a key and shows each node's host key, and says what to add on
 * the nodes; pasting those lines on the nodes and running it again writes a config, which the real
 * sidecar serves and switches over with.
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sudoersRule } from "../../sidecar/node/service-manager.js";
import { SidecarApi, sharedLab } from "./sidecar-harness.js";
import { freshNetwork, runWhenFree } from "./takeover-checks.js";
import { type HostId, type Lab, REPO, type RunningSidecar } from "./world.js";

let lab: Lab;
let dir: string;
const original: Record<string, string> = {};
let sidecar: RunningSidecar | undefined;

function init(args: string[]) {
  return lab.exec(
    "controller",
    [
      process.execPath,
      join(REPO, "dist", "cli.js"),
      "init",
      "--non-interactive",
      "--node",
      `node1=${lab.node("node1").address}`,
      "--node",
      `node2=${lab.node("node2").address}`,
      "--output",
      join(dir, "config.yaml"),
      "--state-dir",
      join(dir, "state"),
      "--server-host",
      lab.info.linkLocal.controller,
      "--server-port",
      "8493",
      "--cluster-name",
      "init-test",
      ...args,
    ],
    { timeout: 120_000 },
  );
}

beforeAll(async () => {
  lab = await sharedLab();
  await freshNetwork(lab);
  dir = join(lab.info.controller.sidecarDir, `init-${Date.now().toString(36)}`);
  mkdirSync(dir, { recursive: true });
  for (const id of ["node1", "node2"])
    original[id] = await lab.readFile(id as HostId, "/home/zigbee/.ssh/authorized_keys");
});

afterAll(async () => {
  await sidecar?.stop();
  for (const [id, keys] of Object.entries(original))
    await lab.writeFile(id as HostId, "/home/zigbee/.ssh/authorized_keys", keys, {
      user: "zigbee",
      mode: "0600",
    });
});

describe("z2m-ha init", () => {
  const fingerprints: Record<string, string> = {};
  let pasteLines: Record<string, string> = {};

  it("first run: a new key, each node's real host key shown, the lines to add printed; no config yet", async () => {
    const result = await init(["--trust-new-host-keys"]);
    expect(result.code, result.stderr).toBe(1);
    expect(result.stdout).toContain(`generated the controller's SSH key ${join(dir, "id_ed25519")}`);
    for (const id of ["node1", "node2"] as const) {
      const shown = new RegExp(
        `^${id} ${lab.node(id).address.replaceAll(".", "\\.")}:22 host key ssh-ed25519 (SHA256:\\S+)$`,
        "m",
      ).exec(result.stdout);
      expect(shown, result.stdout).not.toBeNull();
      fingerprints[id] = shown?.[1] as string;
      // What the node itself says its key is (the way docs/ssh.md tells users to check).
      const onNode = await lab.execOk(id, ["ssh-keygen", "-lf", "/etc/ssh/ssh_host_ed25519_key.pub"]);
      expect(onNode.stdout.split(" ")[1]).toBe(fingerprints[id]);
    }
    expect(result.stdout).toMatch(/zigbee@.* does not accept the controller's key yet/);
    expect(result.stdout).toContain(
      "note: add the controller's key on the nodes above, then run z2m-ha init again",
    );
    expect((await lab.exec("controller", ["test", "-e", join(dir, "config.yaml")])).code).not.toBe(0);
    // The lines to paste on each node, as printed (indented under "On nodeN ..., as root:").
    pasteLines = {};
    for (const id of ["node1", "node2"]) {
      const block = new RegExp(`^${id}: zigbee@\\S+ does not accept.*\\n((?: {4}.*\\n)+)`, "m").exec(
        result.stdout,
      );
      expect(block, result.stdout).not.toBeNull();
      pasteLines[id] = (block?.[1] ?? "").replace(/^ {4}/gm, "");
    }
    const pub = (await lab.readFile("controller", join(dir, "id_ed25519.pub"))).trim();
    expect(pasteLines.node1).toContain(`echo 'restrict ${pub}' >>~zigbee/.ssh/authorized_keys`);
  });

  it("pasted on the nodes, a second run with the checked fingerprints writes a valid config", async () => {
    for (const [id, lines] of Object.entries(pasteLines))
      await lab.execOk(id as HostId, ["sh", "-e", "-c", lines]);
    const result = await init([
      "--accept-host-key",
      `node1=${fingerprints.node1}`,
      "--accept-host-key",
      `node2=${fingerprints.node2}`,
    ]);
    expect(result.code, result.stdout + result.stderr).toBe(0);
    expect(result.stdout).toContain(`using the controller's SSH key ${join(dir, "id_ed25519")}`);
    expect(result.stdout).toContain(`wrote ${join(dir, "config.yaml")}`);
    // What each node still needs: exactly docs/nodes.md's sudo rule, and dialout.
    expect(result.stdout).toContain(sudoersRule("zigbee", "openrc", "zigbee2mqtt"));
    expect(result.stdout).toContain("addgroup zigbee dialout");
    expect(result.stdout).toMatch(/note: node1: \/dev\/ttyUSB0 is no \/dev\/serial\/by-id\/ path/);

    const check = await lab.exec("controller", [
      process.execPath,
      join(REPO, "dist", "cli.js"),
      "config",
      "check",
      join(dir, "config.yaml"),
    ]);
    expect(check.code, check.stderr).toBe(0);
    expect(check.stdout).toContain("ok (2 nodes: node1, node2)");
    const { parse } = await import("yaml");
    const config = parse(await lab.readFile("controller", join(dir, "config.yaml")));
    expect(config.mqtt).toEqual({ url: lab.info.controller.labMqttUrl, base_topic: "zigbee2mqtt" });
    for (const id of ["node1", "node2"]) {
      const node = config.nodes.find((n: { id: string }) => n.id === id);
      expect(node).toEqual({
        id,
        ssh: {
          host: lab.node(id).address,
          port: 22,
          user: "zigbee",
          private_key: join(dir, "id_ed25519"),
          host_key: fingerprints[id],
        },
        data_dir: "/opt/zigbee2mqtt/data",
        staging_dir: "/home/zigbee/zigbee2mqtt-ha",
        coordinator: { port: "/dev/ttyUSB0", tools: "python3 -m zigpy_znp.tools" },
        service: {
          start: "sudo rc-service zigbee2mqtt start",
          stop: "sudo rc-service zigbee2mqtt stop",
          status: "sudo rc-service zigbee2mqtt status",
        },
        overrides: { "serial.port": "/dev/ttyUSB0", "frontend.host": lab.node(id).address },
      });
    }
    // A second run does not overwrite it.
    const again = await init(["--trust-new-host-keys"]);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/exists; give --force/);
  });

  it("interactive: the same questions answered with Enter give the same config; a key not confirmed, none", async () => {
    const interactive = (answers: string[], output: string) =>
      lab.exec(
        "controller",
        [
          process.execPath,
          join(REPO, "dist", "cli.js"),
          "init",
          "--output",
          join(dir, output),
          "--key",
          join(dir, "id_ed25519"),
        ],
        { timeout: 120_000, input: `${answers.join("\n")}\n` },
      );
    const nodes = `node1=${lab.node("node1").address} node2=${lab.node("node2").address}`;
    const refused = await interactive([nodes, "", "n"], "refused.yaml");
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/is this node1's key\? Compare with `ssh-keygen -lf/);
    expect(refused.stderr).toMatch(/node1: host key not confirmed/);
    expect((await lab.exec("controller", ["test", "-e", join(dir, "refused.yaml")])).code).not.toBe(0);

    // nodes, user, two host keys, per node data_dir/port/frontend host, broker, listen address, write.
    const answers = [nodes, "", "y", "y", "", "", "", "", "", "", "", "", "y"];
    const result = await interactive(answers, "interactive.yaml");
    expect(result.code, result.stdout + result.stderr).toBe(0);
    expect(result.stderr).toContain(`node1 data_dir [/opt/zigbee2mqtt/data]: `);
    expect(result.stderr).toContain(`node2 frontend.host [${lab.node("node2").address}]: `);
    const { parse } = await import("yaml");
    const written = parse(await lab.readFile("controller", join(dir, "interactive.yaml")));
    const earlier = parse(await lab.readFile("controller", join(dir, "config.yaml")));
    expect(written.nodes).toEqual(earlier.nodes);
    expect(written.mqtt).toEqual(earlier.mqtt);
    // Input that ends before the questions do is an error, not a hang.
    const cut = await interactive([nodes], "cut.yaml");
    expect(cut.code).toBe(2);
    expect(cut.stderr).toMatch(/no answer: the input ended/);
  });

  it("the real sidecar serves that config, syncs, and switches node1 → node2 with it", async () => {
    sidecar = await lab.startSidecar(join(dir, "config.yaml"));
    const api = new SidecarApi(sidecar.url, sidecar.token);
    await api.waitForStatus(
      "node1 adopted and both nodes probed",
      (s) => s.active === "node1" && s.nodes.every((n) => n.health !== "unknown"),
    );
    const sync = await runWhenFree(api, "sync");
    expect(sync.status, JSON.stringify(sync.error)).toBe("succeeded");
    const switchover = await runWhenFree(api, "switchover", { target: "node2", reason: "lab: init test" });
    expect(switchover.status, JSON.stringify(switchover.error)).toBe("succeeded");
    await lab.waitForZigbee2mqtt("node2");
    expect((await api.status()).active).toBe("node2");
  });
});
