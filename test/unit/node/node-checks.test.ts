import { describe, expect, it } from "vitest";
import { parseConfig } from "../../../sidecar/config/load.js";
import type { NodeConfig } from "../../../sidecar/config/schema.js";
import type { DiskSpace } from "../../../sidecar/node/disk-space.js";
import { type CheckTarget, checkNode, hasErrors } from "../../../sidecar/node/node-checks.js";
import {
  managerOf,
  openrcRunlevels,
  serviceCommands,
  serviceNameOf,
  sudoersRule,
  systemdBoot,
} from "../../../sidecar/node/service-manager.js";
import type { RemoteStats } from "../../../sidecar/node/sftp.js";
import { SFTP_STATUS, SshError } from "../../../sidecar/node/ssh-errors.js";
import type { ExecResult } from "../../../sidecar/node/ssh-exec.js";
import { judgeSudo, parseSudoList } from "../../../sidecar/node/sudo-rules.js";

const SUDO_LIST = `Matching Defaults entries for zigbee on node1:
    env_reset, mail_badpass, secure_path=/usr/local/sbin\\:/usr/local/bin\\:/usr/sbin\\:/usr/bin\\:/sbin\\:/bin, use_pty

User zigbee may run the following commands on node1:
    (root) NOPASSWD: /sbin/rc-service zigbee2mqtt start, /sbin/rc-service zigbee2mqtt stop, /sbin/rc-service zigbee2mqtt status
`;

describe("sudo rules", () => {
  it("parses sudo -l: runas, tags, commands split on unescaped commas only", () => {
    expect(parseSudoList(SUDO_LIST)).toEqual([
      { runas: "(root)", tags: ["NOPASSWD"], command: "/sbin/rc-service zigbee2mqtt start" },
      { runas: "(root)", tags: ["NOPASSWD"], command: "/sbin/rc-service zigbee2mqtt stop" },
      { runas: "(root)", tags: ["NOPASSWD"], command: "/sbin/rc-service zigbee2mqtt status" },
    ]);
    expect(
      parseSudoList(
        "User a may run the following commands on h:\n    (ALL : ALL) NOPASSWD: SETENV: /bin/echo a\\, b, ALL\n",
      ),
    ).toEqual([
      { runas: "(ALL : ALL)", tags: ["NOPASSWD", "SETENV"], command: "/bin/echo a\\, b" },
      { runas: "(ALL : ALL)", tags: ["NOPASSWD", "SETENV"], command: "ALL" },
    ]);
  });

  it("the documented rule is exactly what is needed; anything more is named, the dangerous as such", () => {
    const needed = serviceCommands("openrc", "zigbee2mqtt");
    const argvs = [needed.start, needed.stop, needed.status].map((a) => a.slice(1));
    expect(judgeSudo(parseSudoList(SUDO_LIST), argvs).extra).toEqual([]);
    const broad = parseSudoList(
      "User zigbee may run the following commands on n:\n    (root) NOPASSWD: /sbin/rc-service zigbee2mqtt *, /usr/local/bin/python3 -m zigpy_znp.tools.*, /sbin/rc-service, /usr/bin/apt-get update, /bin/sh -c id\n    (ALL) ALL\n",
    );
    const judged = judgeSudo(broad, argvs);
    expect(judged.needed).toEqual([]);
    expect(judged.extra.map((e) => [e.entry.command, e.dangerous, e.why])).toEqual([
      ["/sbin/rc-service zigbee2mqtt *", true, "a wildcard lets the caller choose the arguments"],
      [
        "/usr/local/bin/python3 -m zigpy_znp.tools.*",
        true,
        expect.stringMatching(/-o FILE writes any file as root/),
      ],
      ["/sbin/rc-service", true, "no arguments written in sudoers means any arguments"],
      ["/usr/bin/apt-get update", false, "not needed by zigbee2mqtt-ha"],
      ["/bin/sh -c id", true, "sh as root runs or writes anything"],
      ["ALL", true, "any command as root"],
    ]);
  });

  it("sudoers rules for both managers name full paths and fixed arguments", () => {
    expect(sudoersRule("zigbee", "openrc", "zigbee2mqtt")).toBe(
      "zigbee ALL=(root) NOPASSWD: /sbin/rc-service zigbee2mqtt start, /sbin/rc-service zigbee2mqtt stop, /sbin/rc-service zigbee2mqtt status",
    );
    expect(sudoersRule("zigbee", "systemd", "zigbee2mqtt")).toBe(
      "zigbee ALL=(root) NOPASSWD: /usr/bin/systemctl start zigbee2mqtt, /usr/bin/systemctl stop zigbee2mqtt",
    );
    expect(() => sudoersRule("zig bee", "openrc", "zigbee2mqtt")).toThrow(/bad user name/);
    expect(() => sudoersRule("zigbee", "openrc", "z2m, ALL")).toThrow(/bad service name/);
  });
});

describe("service managers", () => {
  it("knows the manager and service of a command, and reads boot state", () => {
    expect(managerOf(["sudo", "rc-service", "zigbee2mqtt", "start"])).toBe("openrc");
    expect(managerOf(["sudo", "/usr/bin/systemctl", "start", "zigbee2mqtt"])).toBe("systemd");
    expect(managerOf(["/usr/local/bin/z2m-start"])).toBeUndefined();
    expect(serviceNameOf(["sudo", "rc-service", "zigbee2mqtt", "start"])).toBe("zigbee2mqtt");
    expect(serviceNameOf(["sudo", "systemctl", "start", "zigbee2mqtt"])).toBe("zigbee2mqtt");
    expect(serviceNameOf(["systemctl", "is-active", "--quiet", "z2m"])).toBe("z2m");
    const show = "          sshd | default\n   zigbee2mqtt | default boot\n        local |\n";
    expect(openrcRunlevels(show, "zigbee2mqtt")).toEqual(["default", "boot"]);
    expect(openrcRunlevels(show, "local")).toEqual([]);
    expect(openrcRunlevels(show, "absent")).toEqual([]);
    expect(systemdBoot("enabled\n")).toBe("starts-at-boot");
    expect(systemdBoot("disabled")).toBe("not-at-boot");
    expect(systemdBoot("masked")).toBe("not-at-boot");
    expect(systemdBoot("static")).toBe("unclear");
  });
});

/** A node made of answers: each exec matched by a predicate on its argv. */
class FakeNode implements CheckTarget {
  readonly id = "node1";
  readonly config: NodeConfig;
  files: Record<string, string> = {};
  stats: Record<string, RemoteStats["type"]> = {};
  answers: { when: (argv: readonly string[]) => boolean; result: Partial<ExecResult> }[] = [];
  connectError: Error | undefined;
  ran: string[][] = [];

  constructor(overrides: Record<string, unknown> = {}) {
    const yaml = `mqtt: {url: "mqtt://127.0.0.1:1883"}
nodes:
  - {id: node1, staging_dir: /home/zigbee/z2mha, ssh: {host: n1, user: zigbee, private_key: /k, host_key: "SHA256:${"A".repeat(43)}"}, ${Object.entries(
    overrides,
  )
    .map(([k, v]) => `${k}: ${JSON.stringify(v)}`)
    .join(", ")}}
  - {id: node2, staging_dir: /home/zigbee/z2mha, ssh: {host: n2, user: zigbee, private_key: /k, host_key: "SHA256:${"A".repeat(43)}"}}
`;
    this.config = parseConfig(yaml).nodes[0]!;
  }

  answer(when: (argv: readonly string[]) => boolean, result: Partial<ExecResult>): this {
    this.answers.unshift({ when, result });
    return this;
  }

  async run(argv: readonly string[]): Promise<ExecResult> {
    this.ran.push([...argv]);
    const found = this.answers.find((a) => a.when(argv));
    return {
      code: 0,
      signal: null,
      stdout: "",
      stderr: "",
      stdoutTruncated: false,
      stderrTruncated: false,
      timedOut: false,
      durationMs: 1,
      ...found?.result,
    };
  }

  toolArgv(tool: string, args: string[]): string[] {
    const prefix = [...this.config.coordinator.tools];
    const module = prefix.pop() as string;
    return [...prefix, `${module}.${tool}`, ...args];
  }

  async clockOffsetMs() {
    return { offsetMs: 3, precisionMs: 2 };
  }

  readonly ssh = {
    connect: async () => {
      if (this.connectError) throw this.connectError;
    },
    stat: async (path: string): Promise<RemoteStats> => {
      const type = this.stats[path];
      if (!type)
        throw new SshError("sftp", { node: "node1", target: "n1:22" }, `no ${path}`, {
          sftpStatus: SFTP_STATUS.NO_SUCH_FILE,
        });
      return { type, size: 0, mode: 0o660, uid: 0, gid: 20, atimeMs: 0, mtimeMs: 0 };
    },
    readFile: async (path: string): Promise<Buffer> => {
      const text = this.files[path];
      if (text === undefined)
        throw new SshError("sftp", { node: "node1", target: "n1:22" }, `no ${path}`, {
          sftpStatus: SFTP_STATUS.NO_SUCH_FILE,
        });
      return Buffer.from(text);
    },
    statvfs: async (): Promise<DiskSpace> => ({
      totalBytes: 1e9,
      freeBytes: 5e8,
      availableBytes: 5e8,
      source: "statvfs",
    }),
  };
}

/** A healthy node as docs/nodes.md describes it, with systemd. */
function systemdNode(): FakeNode {
  const node = new FakeNode({
    service: {
      start: "sudo systemctl start zigbee2mqtt",
      stop: "sudo systemctl stop zigbee2mqtt",
      status: "systemctl is-active zigbee2mqtt",
    },
    coordinator: {
      port: "/dev/serial/by-id/usb-dongle",
      tools: "/opt/zigpy-znp/bin/python3 -m zigpy_znp.tools",
    },
  });
  node.stats["/dev/serial/by-id/usb-dongle"] = "other";
  node.files["/opt/zigbee2mqtt/data/configuration.yaml"] =
    "serial: {port: /dev/serial/by-id/usb-dongle, adapter: zstack}\nmqtt: {server: '!secret server'}\n";
  node.files["/opt/zigbee2mqtt/data/secret.yaml"] = "server: mqtt://broker.lan:1884\n";
  node.files["/opt/zigbee2mqtt/package.json"] = '{"name": "zigbee2mqtt", "version": "2.14.1"}';
  node
    .answer((a) => a[0] === "sudo" && a[1] === "-n" && a[2] === "-l" && a.length === 3, {
      stdout:
        "User zigbee may run the following commands on n1:\n    (root) NOPASSWD: /usr/bin/systemctl start zigbee2mqtt, /usr/bin/systemctl stop zigbee2mqtt\n",
    })
    .answer((a) => a[0] === "systemctl" && a[1] === "is-active", { code: 3, stdout: "inactive\n" })
    .answer((a) => a[0] === "systemctl" && a[1] === "is-enabled", { code: 1, stdout: "disabled\n" })
    .answer((a) => a[0] === "systemctl" && a[1] === "cat", {
      stdout:
        "[Service]\nExecStart=/usr/bin/node /opt/zigbee2mqtt/index.js\nWorkingDirectory=/opt/zigbee2mqtt\n",
    })
    .answer((a) => a.includes("-c") && String(a[a.indexOf("-c") + 1]).includes("importlib.metadata"), {
      stdout: "0.14.0\n",
    })
    .answer((a) => a[0] === "sh" && String(a[2]).startsWith("du -sk"), { stdout: "2048\n" });
  return node;
}

describe("checkNode", () => {
  it("a healthy systemd node passes; the secret broker and the by-id port are understood", async () => {
    const node = systemdNode();
    const results = await checkNode(node, { clockSkewWarnMs: 2000 });
    expect(results.filter((r) => !r.ok)).toEqual([]);
    expect(hasErrors(results)).toBe(false);
    const detail = Object.fromEntries(results.map((r) => [r.id, r.detail]));
    expect(detail["service.boot"]).toBe("zigbee2mqtt is disabled: not started at boot");
    expect(detail.tools).toContain("zigpy-znp 0.14.0");
    expect(detail.broker).toContain("broker.lan:1884");
    expect(detail["zigbee2mqtt.version"]).toBe("zigbee2mqtt 2.14.1 (/opt/zigbee2mqtt)");
    // The broker is tried from the node with the tools' own python, host and port as arguments.
    expect(node.ran).toContainEqual([
      "/opt/zigpy-znp/bin/python3",
      "-c",
      expect.stringContaining("socket.create_connection"),
      "broker.lan",
      "1884",
    ]);
  });

  it("an enabled unit, an ember adapter on a zstack-nvram node and another network coordinator are errors with fixes", async () => {
    const node = systemdNode()
      .answer((a) => a[0] === "systemctl" && a[1] === "is-enabled", { code: 0, stdout: "enabled\n" })
      .answer((a) => a[0] === "sh" && String(a[2]).includes('readlink -f "$2"'), { code: 1 });
    node.files["/opt/zigbee2mqtt/data/configuration.yaml"] =
      "serial: {port: 'tcp://192.0.2.7:6638', adapter: ember}\nmqtt: {server: mqtt://b:1883}\n";
    const results = await checkNode(node, { clockSkewWarnMs: 2000 });
    const failed = Object.fromEntries(results.filter((r) => !r.ok).map((r) => [r.id, r]));
    expect(Object.keys(failed).sort()).toEqual(["adapter", "port.match", "service.boot"]);
    expect(failed["service.boot"]?.fix).toBe("as root on the node: systemctl disable zigbee2mqtt");
    expect(failed.adapter?.detail).toBe("serial.adapter is ember but coordinator.adapter is zstack");
    expect(failed.adapter?.fix).toMatch(/coordinator.type: z2m-backup and coordinator.adapter: ember/);
    expect(failed["port.match"]?.detail).toMatch(
      /\(tcp:\/\/192.0.2.7:6638\) and coordinator.port \(.*\) are different coordinators/,
    );
    expect(hasErrors(results)).toBe(true);
  });

  it("a network-attached coordinator: never connected to while zigbee2mqtt holds it; stopped, reached from the node", async () => {
    const tcpNode = (running: boolean, reachable: boolean) => {
      const node = systemdNode();
      const fresh = new FakeNode({
        service: node.config.service,
        coordinator: { port: "tcp://192.0.2.7:6638", tools: "/opt/zigpy-znp/bin/python3 -m zigpy_znp.tools" },
      });
      Object.assign(fresh, { files: node.files, stats: node.stats, answers: node.answers });
      fresh.files["/opt/zigbee2mqtt/data/configuration.yaml"] =
        "serial: {port: 'tcp://192.0.2.7:6638', adapter: zstack}\nmqtt: {server: mqtt://b:1883}\n";
      return fresh
        .answer((a) => a[0] === "systemctl" && a[1] === "is-active", running ? { code: 0 } : { code: 3 })
        .answer((a) => a[0] === "node" && a[1] === "-e", { code: reachable ? 0 : 1 });
    };
    const connects = (node: FakeNode) => node.ran.filter((a) => a[0] === "node" && a[1] === "-e");

    const busy = tcpNode(true, true);
    const held = await checkNode(busy, { clockSkewWarnMs: 2000 });
    expect(held.find((r) => r.id === "port")).toMatchObject({
      ok: true,
      severity: "warning",
      detail: expect.stringMatching(
        /not connected to, as zigbee2mqtt runs here and holds its one client connection/,
      ),
    });
    expect(connects(busy)).toEqual([]);
    expect(held.find((r) => r.id === "port.match")).toMatchObject({ ok: true });

    const free = tcpNode(false, true);
    expect((await checkNode(free, { clockSkewWarnMs: 2000 })).find((r) => r.id === "port")).toMatchObject({
      ok: true,
      detail: "tcp://192.0.2.7:6638 accepts a connection from the node",
    });
    expect(connects(free)).toEqual([["node", "-e", expect.any(String), "192.0.2.7", "6638"]]);

    const gone = tcpNode(false, false);
    expect((await checkNode(gone, { clockSkewWarnMs: 2000 })).find((r) => r.id === "port")).toMatchObject({
      ok: false,
      severity: "error",
      fix: expect.stringMatching(/no other client/),
    });
  });

  it("an adapter nobody supports yet is an error naming the ones that are", async () => {
    const node = systemdNode();
    node.files["/opt/zigbee2mqtt/data/configuration.yaml"] =
      "serial: {port: /dev/ttyUSB0, adapter: deconz}\nmqtt: {server: mqtt://b:1883}\n";
    const results = await checkNode(node, { clockSkewWarnMs: 2000 });
    expect(results.find((r) => r.id === "adapter")).toMatchObject({
      ok: false,
      detail: expect.stringMatching(
        /deconz: not supported yet \(zigbee2mqtt-ha moves TI Z-Stack and Silicon Labs EmberZNet/,
      ),
    });
  });

  it("an unreachable node yields the ssh check alone, with what to look at", async () => {
    const node = systemdNode();
    node.connectError = new SshError(
      "unreachable",
      { node: "node1", target: "n1:22" },
      "connect ECONNREFUSED",
    );
    const results = await checkNode(node, { clockSkewWarnMs: 2000 });
    expect(results).toEqual([
      {
        id: "ssh",
        ok: false,
        severity: "error",
        detail: "node node1 (n1:22): connect ECONNREFUSED",
        fix: expect.stringMatching(/check ssh.host and ssh.port/),
      },
    ]);
    expect(node.ran).toEqual([]);
  });

  it("service commands without a sudo rule: sudo.service names each denied command and the rule to write", async () => {
    const node = systemdNode().answer((a) => a[0] === "sudo" && a[2] === "-l" && a.length > 3, {
      code: 1,
      stderr: "sudo: a password is required\n",
    });
    const results = await checkNode(node, { clockSkewWarnMs: 2000 });
    const sudo = results.find((r) => r.id === "sudo.service");
    expect(sudo?.ok).toBe(false);
    expect(sudo?.detail).toMatch(/sudo systemctl start zigbee2mqtt: sudo: a password is required/);
    expect(sudo?.fix).toContain(
      "zigbee ALL=(root) NOPASSWD: /usr/bin/systemctl start zigbee2mqtt, /usr/bin/systemctl stop zigbee2mqtt",
    );
  });
});
