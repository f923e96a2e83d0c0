/**
 * Everything a node needs for the sidecar, checked over SSH: `z2m-ha doctor` prints these, and
 * the cluster's check operation can run the same list. Each check says what it found and, when it
 * failed, the fix. Read-only: nothing on the node is changed (the staging dir is not created).
 */
import { posix } from "node:path";
import { parseDocument } from "yaml";
import type { NodeConfig } from "../config/schema.js";
import type { DiskSpace } from "./disk-space.js";
import { nodeVersionProblem } from "./node-version.js";
import { managerOf, openrcRunlevels, serviceNameOf, sudoersRule, systemdBoot } from "./service-manager.js";
import type { RemoteStats } from "./sftp.js";
import { isNotFound, isSshError } from "./ssh-errors.js";
import type { ExecOptions, ExecResult } from "./ssh-exec.js";
import { judgeSudo, parseSudoList } from "./sudo-rules.js";

export type CheckSeverity = "error" | "warning";

export interface CheckResult {
  /** Stable name for scripts: "ssh", "sudo.scope", "port.by-id", ... */
  id: string;
  ok: boolean;
  /** How much a failure of this check matters: an error stops switchovers, a warning does not. */
  severity: CheckSeverity;
  detail: string;
  /** What to do about a failure (commands to run, config to change). */
  fix?: string;
}

/** What the checks need of a node: ZigbeeNode satisfies it. */
export interface CheckTarget {
  readonly id: string;
  readonly config: NodeConfig;
  run(argv: readonly string[], options?: ExecOptions): Promise<ExecResult>;
  toolArgv(tool: string, args: string[]): string[];
  clockOffsetMs(): Promise<{ offsetMs: number; precisionMs: number }>;
  readonly ssh: {
    connect(): Promise<void>;
    stat(path: string): Promise<RemoteStats>;
    readFile(path: string, options?: { maxBytes?: number }): Promise<Buffer>;
    statvfs(path: string): Promise<DiskSpace>;
  };
}

export interface CheckOptions {
  /** monitor.clock_skew_warn. */
  clockSkewWarnMs: number;
  /** Free space wanted beyond the copies themselves (default 10 MiB). */
  spareBytes?: number;
}

const MiB = 1024 * 1024;
const COMMAND_TIMEOUT = 30_000;

/** Runs every check on one node; never throws for what it finds. */
export async function checkNode(target: CheckTarget, options: CheckOptions): Promise<CheckResult[]> {
  const results: CheckResult[] = [];
  const ssh = await checkSsh(target);
  results.push(ssh);
  if (!ssh.ok) return results;
  const c = new Checker(target, options);
  for (const step of [
    () => c.sudo(),
    () => c.serviceStatus(),
    () => c.serviceBoot(),
    () => c.tools(),
    () => c.port(),
    () => c.dataDir(),
    () => c.stagingDir(),
    () => c.disk(),
    () => c.clock(),
    () => c.zigbee2mqttVersion(),
  ]) {
    try {
      results.push(...(await step()));
    } catch (error) {
      if (isSshError(error) && ["unreachable", "closed", "timeout"].includes(error.kind)) {
        results.push({
          id: "ssh",
          ok: false,
          severity: "error",
          detail: `the connection was lost during the checks: ${error.message}`,
          fix: "check the node and its network, then run the checks again",
        });
        return results;
      }
      throw error;
    }
  }
  return results;
}

/** Whether any check failed that counts as an error. */
export function hasErrors(results: readonly CheckResult[]): boolean {
  return results.some((r) => !r.ok && r.severity === "error");
}

async function checkSsh(target: CheckTarget): Promise<CheckResult> {
  const { ssh } = target.config;
  try {
    await target.ssh.connect();
    return {
      id: "ssh",
      ok: true,
      severity: "error",
      detail: `logged in as ${ssh.user} at ${ssh.host}:${ssh.port}; the host key is the pinned ${ssh.host_key}`,
    };
  } catch (error) {
    if (!isSshError(error)) throw error;
    const fixes: Record<string, string> = {
      "host-key-mismatch":
        "on the node, ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub; if the node was reinstalled, put that fingerprint in ssh.host_key, otherwise find out who answers on that address",
      "auth-failed": `add the controller's public key (${ssh.private_key}.pub) to ~${ssh.user}/.ssh/authorized_keys on the node, as \`z2m-ha init\` prints it, and check that ssh.private_key is readable`,
      unreachable: `check ssh.host and ssh.port, that the node is up and its sshd runs and lets ${ssh.user} in (AllowUsers)`,
    };
    return {
      id: "ssh",
      ok: false,
      severity: "error",
      detail: error.message,
      fix: fixes[error.kind] ?? "check the node and its network",
    };
  }
}

class Checker {
  readonly #config: NodeConfig;

  constructor(
    private readonly target: CheckTarget,
    private readonly options: CheckOptions,
  ) {
    this.#config = target.config;
  }

  #sh(script: string, ...args: string[]): Promise<ExecResult> {
    return this.target.run(["sh", "-c", script, "sh", ...args], { timeoutMs: COMMAND_TIMEOUT });
  }

  get #user(): string {
    return this.#config.ssh.user;
  }

  /** The service commands that go through sudo, without the "sudo". */
  #sudoCommands(): string[][] {
    const { start, stop, status } = this.#config.service;
    return [start, stop, status].filter((argv) => argv[0] === "sudo").map((argv) => argv.slice(1));
  }

  #ruleFix(): string {
    const manager = managerOf(this.#config.service.start);
    const service = serviceNameOf(this.#config.service.start);
    if (!manager || !service)
      return `allow ${this.#user} exactly the service commands in /etc/sudoers.d/zigbee2mqtt-ha, with NOPASSWD and no wildcard`;
    return `as root on the node, write /etc/sudoers.d/zigbee2mqtt-ha (mode 0440, check with visudo -c) with exactly:\n${sudoersRule(this.#user, manager, service)}`;
  }

  async sudo(): Promise<CheckResult[]> {
    const results: CheckResult[] = [];
    const needed = this.#sudoCommands();
    const denied: string[] = [];
    for (const argv of needed) {
      const allowed = await this.target.run(["sudo", "-n", "-l", ...argv], { timeoutMs: COMMAND_TIMEOUT });
      if (allowed.code !== 0)
        denied.push(`sudo ${argv.join(" ")}: ${tail(allowed) || `exit ${allowed.code}`}`);
    }
    results.push(
      needed.length === 0
        ? { id: "sudo.service", ok: true, severity: "error", detail: "the service commands need no sudo" }
        : denied.length === 0
          ? {
              id: "sudo.service",
              ok: true,
              severity: "error",
              detail: `${this.#user} may run the ${needed.length} service commands through sudo without a password`,
            }
          : {
              id: "sudo.service",
              ok: false,
              severity: "error",
              detail: `not allowed without a password: ${denied.join("; ")}`,
              fix: this.#ruleFix(),
            },
    );

    const list = await this.target.run(["sudo", "-n", "-l"], { timeoutMs: COMMAND_TIMEOUT });
    const problems: string[] = [];
    let dangerous = false;
    if (list.code === 0) {
      const judged = judgeSudo(parseSudoList(list.stdout), needed);
      for (const extra of judged.extra) {
        dangerous ||= extra.dangerous;
        problems.push(`${extra.entry.runas} ${extra.entry.command} (${extra.why})`);
      }
    }
    const tools = this.#config.coordinator.tools;
    if (tools[0] === "sudo") {
      dangerous = true;
      problems.push(
        `coordinator.tools runs the zigpy-znp tools as root (${tools.join(" ")}): they need only the serial port, through the dialout group`,
      );
    }
    if (problems.length === 0) {
      results.push({
        id: "sudo.scope",
        ok: true,
        severity: "error",
        detail:
          list.code === 0
            ? "sudo allows nothing beyond the service commands"
            : "sudo allows nothing without a password",
      });
    } else {
      results.push({
        id: "sudo.scope",
        ok: false,
        severity: dangerous ? "error" : "warning",
        detail: `sudo allows ${this.#user} more than zigbee2mqtt-ha needs, and a stolen SSH key gets it too: ${problems.join("; ")}`,
        fix: [
          `remove these rules for ${this.#user} (sudo -l -U ${this.#user} lists them; look in /etc/sudoers and /etc/sudoers.d/)`,
          ...(tools[0] === "sudo"
            ? [
                `set coordinator.tools to ${tools.slice(1).join(" ")} and add ${this.#user} to dialout (${groupFix(this.#user)})`,
              ]
            : []),
          this.#ruleFix(),
        ].join("\n"),
      });
    }
    return results;
  }

  async serviceStatus(): Promise<CheckResult[]> {
    const { status } = this.#config.service;
    const result = await this.target.run(status, { timeoutMs: this.#config.service.timeout });
    const states: Record<number, string> = { 0: "running", 3: "stopped", 32: "crashed" };
    const state = result.code === null ? undefined : states[result.code];
    if (state)
      return [{ id: "service.status", ok: true, severity: "error", detail: `${status.join(" ")}: ${state}` }];
    return [
      {
        id: "service.status",
        ok: false,
        severity: "error",
        detail: `${status.join(" ")} answered ${result.timedOut ? "nothing in time" : `exit ${result.code}`} (0 running, 3 stopped, 32 crashed expected): ${tail(result)}`,
        fix: "check service.status in the config (the zigbee2mqtt service must exist on the node) and the sudo rule for it",
      },
    ];
  }

  async serviceBoot(): Promise<CheckResult[]> {
    const { start } = this.#config.service;
    const manager = managerOf(start);
    const service = serviceNameOf(start);
    const id = "service.boot";
    if (!manager || !service) {
      return [
        {
          id,
          ok: false,
          severity: "warning",
          detail: `cannot tell whether the service of "${start.join(" ")}" starts at boot (neither OpenRC nor systemd)`,
          fix: "make sure zigbee2mqtt does not start at boot: only the sidecar may start it",
        },
      ];
    }
    if (manager === "openrc") {
      const show = await this.target.run(["/sbin/rc-update", "show", "-v"], { timeoutMs: COMMAND_TIMEOUT });
      if (show.code !== 0)
        return [
          {
            id,
            ok: false,
            severity: "warning",
            detail: `rc-update show failed (exit ${show.code}): ${tail(show)}`,
            fix: `as root on the node: rc-update show | grep ${service}; if it is listed, rc-update del ${service} <runlevel>`,
          },
        ];
      const levels = openrcRunlevels(show.stdout, service);
      if (levels.length === 0)
        return [
          {
            id,
            ok: true,
            severity: "error",
            detail: `${service} is in no OpenRC runlevel: not started at boot`,
          },
        ];
      return [
        {
          id,
          ok: false,
          severity: "error",
          detail: `${service} is in the OpenRC runlevel ${levels.join(", ")}: it starts at boot, and after a power cut two coordinators would run the same network`,
          fix: levels.map((level) => `as root on the node: rc-update del ${service} ${level}`).join("\n"),
        },
      ];
    }
    const enabled = await this.target.run(["systemctl", "is-enabled", service], {
      timeoutMs: COMMAND_TIMEOUT,
    });
    const state = enabled.stdout.trim();
    const boot = systemdBoot(state);
    if (boot === "not-at-boot")
      return [{ id, ok: true, severity: "error", detail: `${service} is ${state}: not started at boot` }];
    if (boot === "starts-at-boot")
      return [
        {
          id,
          ok: false,
          severity: "error",
          detail: `${service} is ${state}: it starts at boot, and after a power cut two coordinators would run the same network`,
          fix: `as root on the node: systemctl disable ${service}`,
        },
      ];
    return [
      {
        id,
        ok: false,
        severity: "warning",
        detail: `systemctl is-enabled ${service}: "${state || tail(enabled)}": another unit may start it`,
        fix: `make sure nothing wants ${service} at boot (systemctl list-dependencies --reverse ${service})`,
      },
    ];
  }

  /** The interpreter part of coordinator.tools when it is "<python...> -m zigpy_znp.tools" without sudo. */
  #python(): string[] | undefined {
    const tools = this.#config.coordinator.tools;
    if (tools.length < 3 || tools[0] === "sudo") return undefined;
    if (tools[tools.length - 1] !== "zigpy_znp.tools" || tools[tools.length - 2] !== "-m") return undefined;
    return tools.slice(0, -2);
  }

  async tools(): Promise<CheckResult[]> {
    if (this.#config.coordinator.adapter === "ember") {
      const node = this.#config.coordinator.tools;
      const ran = await this.target.run([...node, "--version"], { timeoutMs: 30_000 });
      const problem = ran.code === 0 ? nodeVersionProblem(ran.stdout) : `exit ${ran.code}: ${tail(ran)}`;
      return [
        problem === undefined
          ? {
              id: "tools",
              ok: true,
              severity: "error",
              detail: `${node.join(" ")} ${ran.stdout.trim()} runs the sidecar's ember tool (uploaded into the staging dir)`,
            }
          : {
              id: "tools",
              ok: false,
              severity: "error",
              detail: `${node.join(" ")} --version: ${problem}`,
              fix: "set coordinator.tools to the Node.js that runs zigbee2mqtt on the node (e.g. /usr/bin/node)",
            },
      ];
    }
    const help = this.target.toolArgv("nvram_read", ["--help"]);
    const ran = await this.target.run(help, { timeoutMs: 60_000 });
    if (ran.code !== 0)
      return [
        {
          id: "tools",
          ok: false,
          severity: "error",
          detail: `${help.join(" ")}: exit ${ran.code}: ${tail(ran)}`,
          fix: "install zigpy-znp on the node (docs/nodes.md: python3 -m venv /opt/zigpy-znp && /opt/zigpy-znp/bin/pip install zigpy-znp) and set coordinator.tools to its python, e.g. /opt/zigpy-znp/bin/python3 -m zigpy_znp.tools",
        },
      ];
    const python = this.#python();
    let version = "";
    if (python) {
      const asked = await this.target.run(
        [...python, "-c", "import importlib.metadata as m; print(m.version('zigpy-znp'))"],
        { timeoutMs: 60_000 },
      );
      if (asked.code === 0) version = ` ${asked.stdout.trim()}`;
    }
    return [
      {
        id: "tools",
        ok: true,
        severity: "error",
        detail: `zigpy-znp${version} imports and its tools run (${this.#config.coordinator.tools.join(" ")})`,
      },
    ];
  }

  async port(): Promise<CheckResult[]> {
    const port = this.#config.coordinator.port;
    const network = /^tcp:\/\/([^\s/:]+):(\d+)$/.exec(port);
    if (network) return this.#networkPort(port, network[1] as string, network[2] as string);
    let stats: RemoteStats;
    try {
      stats = await this.target.ssh.stat(port);
    } catch (error) {
      if (!isNotFound(error)) throw error;
      return [
        {
          id: "port",
          ok: false,
          severity: "error",
          detail: `${port} does not exist (dongle unplugged, or another path)`,
          fix: "plug the dongle in; ls -l /dev/serial/by-id/ on the node shows its stable path for coordinator.port",
        },
      ];
    }
    const results: CheckResult[] = [
      stats.type === "other"
        ? { id: "port", ok: true, severity: "error", detail: `${port} is a device` }
        : {
            id: "port",
            ok: false,
            severity: "error",
            detail: `${port} is a ${stats.type}, not a serial device`,
            fix: "set coordinator.port to the dongle's device (ls -l /dev/serial/by-id/)",
          },
    ];
    if (this.#config.coordinator.tools[0] !== "sudo") {
      const access = await this.#sh('test -r "$1" && test -w "$1"', port);
      results.push(
        access.code === 0
          ? {
              id: "port.access",
              ok: true,
              severity: "error",
              detail: `${this.#user} may read and write ${port}`,
            }
          : {
              id: "port.access",
              ok: false,
              severity: "error",
              detail: `${this.#user} cannot open ${port} for reading and writing, so the tools cannot run without sudo`,
              fix: `${groupFix(this.#user)}; the sidecar's next SSH login has the group (restart it)`,
            },
      );
    }
    if (port.startsWith("/dev/serial/by-id/")) {
      results.push({
        id: "port.by-id",
        ok: true,
        severity: "warning",
        detail: `${port} names the dongle itself`,
      });
    } else {
      const links = await this.#sh(
        'p=$(readlink -f "$1"); for l in /dev/serial/by-id/*; do [ -e "$l" ] || continue; [ "$(readlink -f "$l")" = "$p" ] && echo "$l"; done; true',
        port,
      );
      const found = links.stdout.trim().split("\n").filter(Boolean);
      results.push({
        id: "port.by-id",
        ok: false,
        severity: "warning",
        detail: `${port} is whichever device the kernel named so first; after a reboot with another USB serial device it may be another`,
        fix: found.length
          ? `use ${found[0]} in coordinator.port and in overrides serial.port (and zigbee2mqtt's serial.port)`
          : "no /dev/serial/by-id/ link points at it; if the dongle is USB, its by-id path appears once it is plugged in",
      });
    }
    return results;
  }

  /**
   * A network-attached coordinator accepts one client at a time: connected to only while the
   * node's zigbee2mqtt is stopped, from the node (where zigbee2mqtt connects from).
   */
  async #networkPort(port: string, host: string, tcpPort: string): Promise<CheckResult[]> {
    const service = await this.target.run(this.#config.service.status, { timeoutMs: COMMAND_TIMEOUT });
    if (service.code === 0)
      return [
        {
          id: "port",
          ok: true,
          severity: "warning",
          detail: `${port} is a network-attached coordinator; not connected to, as zigbee2mqtt runs here and holds its one client connection`,
        },
      ];
    const probe =
      'const [h, p] = process.argv.slice(1); const s = require("node:net").connect(Number(p), h);' +
      's.setTimeout(3000, () => process.exit(1)); s.on("connect", () => { s.destroy(); process.exit(0); });' +
      's.on("error", () => process.exit(1));';
    const ran = await this.target.run(["node", "-e", probe, host, tcpPort], { timeoutMs: COMMAND_TIMEOUT });
    return [
      ran.code === 0
        ? { id: "port", ok: true, severity: "error", detail: `${port} accepts a connection from the node` }
        : {
            id: "port",
            ok: false,
            severity: "error",
            detail: `${port} does not accept a connection from the node (exit ${ran.code})`,
            fix: "check the coordinator's address and port, that it is powered, and that no other client (another zigbee2mqtt, ZHA) holds it",
          },
    ];
  }

  async dataDir(): Promise<CheckResult[]> {
    const dir = this.#config.data_dir;
    const owned = await this.#sh('test -d "$1" && test -w "$1"', dir);
    if (owned.code !== 0)
      return [
        {
          id: "data-dir",
          ok: false,
          severity: "error",
          detail: `${dir} is not a directory ${this.#user} can write`,
          fix: `as root on the node: chown -R ${this.#user}: ${dir} (or set data_dir to zigbee2mqtt's data dir)`,
        },
      ];
    const results: CheckResult[] = [
      { id: "data-dir", ok: true, severity: "error", detail: `${dir} is writable by ${this.#user}` },
    ];
    const path = posix.join(dir, "configuration.yaml");
    let text: string;
    try {
      text = (await this.target.ssh.readFile(path, { maxBytes: MiB })).toString("utf8");
    } catch (error) {
      if (!isSshError(error, "sftp")) throw error;
      results.push({
        id: "zigbee2mqtt.config",
        ok: false,
        severity: "error",
        detail: `cannot read ${path}: ${error.message}`,
        fix: "set data_dir to the directory with zigbee2mqtt's configuration.yaml",
      });
      return results;
    }
    const doc = parseDocument(text);
    if (doc.errors.length > 0) {
      results.push({
        id: "zigbee2mqtt.config",
        ok: false,
        severity: "error",
        detail: `${path} is not valid YAML: ${doc.errors[0]?.message.split("\n")[0]}`,
        fix: "repair zigbee2mqtt's configuration.yaml",
      });
      return results;
    }
    const z2m = (doc.toJS() ?? {}) as Z2mSettings;
    results.push(
      ...this.#adapter(z2m),
      ...(await this.#serialPortMatches(z2m)),
      ...(await this.#broker(z2m)),
    );
    return results;
  }

  #adapter(z2m: Z2mSettings): CheckResult[] {
    const adapter = z2m.serial?.adapter;
    const { type, adapter: configured } = this.#config.coordinator;
    if (adapter === configured)
      return [
        {
          id: "adapter",
          ok: true,
          severity: "error",
          detail: `serial.adapter is ${adapter} (${adapter === "ember" ? "Silicon Labs EmberZNet" : "TI Z-Stack"}), as coordinator.adapter; driver ${type}`,
        },
      ];
    if (adapter === undefined)
      return [
        {
          id: "adapter",
          ok: false,
          severity: "warning",
          detail: "serial.adapter is not set: zigbee2mqtt guesses the coordinator type at each start",
          fix: `set serial.adapter: ${configured} in zigbee2mqtt's configuration.yaml`,
        },
      ];
    if (adapter === "ember" || adapter === "zstack")
      return [
        {
          id: "adapter",
          ok: false,
          severity: "error",
          detail: `serial.adapter is ${adapter} but coordinator.adapter is ${configured}`,
          fix:
            adapter === "ember"
              ? "set coordinator.type: z2m-backup and coordinator.adapter: ember for this cluster's nodes (docs/coordinators.md)"
              : `set coordinator.adapter: zstack (or serial.adapter: ${configured})`,
        },
      ];
    return [
      {
        id: "adapter",
        ok: false,
        severity: "error",
        detail: `serial.adapter is ${String(adapter)}: not supported yet (zigbee2mqtt-ha moves TI Z-Stack and Silicon Labs EmberZNet coordinators)`,
        fix: "use a Z-Stack (adapter zstack) or EmberZNet (adapter ember) coordinator on every node (docs/coordinators.md)",
      },
    ];
  }

  async #serialPortMatches(z2m: Z2mSettings): Promise<CheckResult[]> {
    const override = this.#config.overrides["serial.port"];
    const used = typeof override === "string" ? override : z2m.serial?.port;
    const where =
      typeof override === "string"
        ? "overrides serial.port"
        : "serial.port in zigbee2mqtt's configuration.yaml";
    if (typeof used !== "string") return [];
    const port = this.#config.coordinator.port;
    if (/^(tcp|socket):\/\//.test(used) || port.startsWith("tcp://")) {
      const same = used.replace(/^socket:/, "tcp:") === port;
      return [
        same
          ? {
              id: "port.match",
              ok: true,
              severity: "error",
              detail: `${where} is coordinator.port (${port})`,
            }
          : {
              id: "port.match",
              ok: false,
              severity: "error",
              detail: `${where} (${used}) and coordinator.port (${port}) are different coordinators`,
              fix: "make coordinator.port and overrides serial.port the same (tcp://host:port for a network coordinator)",
            },
      ];
    }
    const same = await this.#sh('[ "$(readlink -f "$1")" = "$(readlink -f "$2")" ]', used, port);
    if (same.code === 0)
      return [
        { id: "port.match", ok: true, severity: "error", detail: `${where} is the coordinator.port device` },
      ];
    return [
      {
        id: "port.match",
        ok: false,
        severity: "error",
        detail: `${where} (${used}) and coordinator.port (${port}) are different devices: the NVRAM copy would go to another dongle than zigbee2mqtt's`,
        fix: "make coordinator.port and overrides serial.port the same by-id path",
      },
    ];
  }

  async #broker(z2m: Z2mSettings): Promise<CheckResult[]> {
    let server = z2m.mqtt?.server;
    if (typeof server === "string" && server.startsWith("!secret ")) {
      server = await this.#secret(server.slice("!secret ".length).trim());
    }
    if (typeof server !== "string")
      return [
        {
          id: "broker",
          ok: false,
          severity: "warning",
          detail: "no mqtt.server in zigbee2mqtt's configuration.yaml",
          fix: "set mqtt.server in zigbee2mqtt's configuration.yaml to the broker the sidecar uses",
        },
      ];
    let url: URL;
    try {
      url = new URL(server);
    } catch {
      return [
        {
          id: "broker",
          ok: false,
          severity: "error",
          detail: `mqtt.server ${JSON.stringify(server)} is not a URL`,
          fix: "write it as mqtt://host:1883",
        },
      ];
    }
    const secure = ["mqtts:", "ssl:", "wss:"].includes(url.protocol);
    const port = url.port || (secure ? "8883" : url.protocol === "ws:" ? "80" : "1883");
    const host = url.hostname.replace(/^\[(.*)\]$/, "$1");
    const python = this.#python();
    if (!python)
      return [
        {
          id: "broker",
          ok: false,
          severity: "warning",
          detail: `cannot test ${host}:${port} from the node (coordinator.tools is not "<python> -m zigpy_znp.tools")`,
          fix: `on the node: nc -z ${host} ${port}`,
        },
      ];
    const probe = await this.target.run(
      [
        ...python,
        "-c",
        "import socket,sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), 5).close()",
        host,
        port,
      ],
      { timeoutMs: COMMAND_TIMEOUT },
    );
    if (probe.code === 0)
      return [
        {
          id: "broker",
          ok: true,
          severity: "error",
          detail: `the node reaches zigbee2mqtt's broker ${host}:${port}`,
        },
      ];
    return [
      {
        id: "broker",
        ok: false,
        severity: "error",
        detail: `the node cannot open ${host}:${port} (zigbee2mqtt's mqtt.server): ${tail(probe)}`,
        fix: "check that the broker runs and listens on that address, and the firewall between node and broker",
      },
    ];
  }

  async #secret(key: string): Promise<unknown> {
    try {
      const text = (
        await this.target.ssh.readFile(posix.join(this.#config.data_dir, "secret.yaml"), { maxBytes: MiB })
      ).toString("utf8");
      return (parseDocument(text).toJS() as Record<string, unknown> | null)?.[key];
    } catch (error) {
      if (isSshError(error, "sftp")) return undefined;
      throw error;
    }
  }

  /** The nearest existing directory at or above `path` (for one that is not there yet). */
  async #existingAncestor(path: string): Promise<string | undefined> {
    const found = await this.#sh(
      'd=$1; while [ ! -e "$d" ]; do d=$(dirname "$d"); done; [ -d "$d" ] && printf "%s" "$d"',
      path,
    );
    return found.code === 0 ? found.stdout : undefined;
  }

  async stagingDir(): Promise<CheckResult[]> {
    const dir = this.#config.staging_dir;
    const base = await this.#existingAncestor(dir);
    const writable = base !== undefined && (await this.#sh('test -w "$1"', base)).code === 0;
    if (base === dir && writable)
      return [
        { id: "staging-dir", ok: true, severity: "error", detail: `${dir} is writable by ${this.#user}` },
      ];
    if (base !== undefined && writable)
      return [
        {
          id: "staging-dir",
          ok: true,
          severity: "error",
          detail: `${dir} does not exist yet; ${this.#user} may create it in ${base} (the first sync does)`,
        },
      ];
    return [
      {
        id: "staging-dir",
        ok: false,
        severity: "error",
        detail: `${this.#user} cannot write ${base ?? dir}`,
        fix: `set staging_dir to a directory in ${this.#user}'s home, e.g. /home/${this.#user}/zigbee2mqtt-ha`,
      },
    ];
  }

  async disk(): Promise<CheckResult[]> {
    const spare = this.options.spareBytes ?? 10 * MiB;
    const size = await this.#sh('du -sk "$1" 2>/dev/null | cut -f1', this.#config.data_dir);
    const dataBytes = Number(size.stdout.trim()) * 1024 || 0;
    const results: CheckResult[] = [];
    const places = [
      {
        id: "disk.data-dir",
        path: this.#config.data_dir,
        need: dataBytes + spare,
        why: "a switchover writes a copy",
      },
      {
        id: "disk.staging-dir",
        path: (await this.#existingAncestor(this.#config.staging_dir)) ?? this.#config.staging_dir,
        need: 2 * dataBytes + spare,
        why: "a sync keeps the current copy while it writes the next",
      },
    ];
    for (const place of places) {
      let space: DiskSpace;
      try {
        space = await this.target.ssh.statvfs(place.path);
      } catch (error) {
        if (!isSshError(error, "sftp")) throw error;
        continue;
      }
      const ok = space.availableBytes >= place.need;
      results.push({
        id: place.id,
        ok,
        severity: "error",
        detail: `${mib(space.availableBytes)} free for ${this.#user} at ${place.path}; ${mib(place.need)} wanted (${place.why}; the data dir is ${mib(dataBytes)})`,
        ...(ok
          ? {}
          : {
              fix: `free space at ${place.path} (zigbee2mqtt's log/ directory grows; set its log rotation)`,
            }),
      });
    }
    return results;
  }

  async clock(): Promise<CheckResult[]> {
    const { offsetMs, precisionMs } = await this.target.clockOffsetMs();
    const allowed = this.options.clockSkewWarnMs + precisionMs;
    const sign = offsetMs >= 0 ? "+" : "";
    if (Math.abs(offsetMs) <= allowed)
      return [
        {
          id: "clock",
          ok: true,
          severity: "error",
          detail: `${sign}${offsetMs} ms against the controller (±${precisionMs} ms)`,
        },
      ];
    return [
      {
        id: "clock",
        ok: false,
        severity: "error",
        detail: `the node's clock is ${sign}${(offsetMs / 1000).toFixed(1)} s off the controller's (more than monitor.clock_skew_warn): the age of staged copies and the operation times come out wrong`,
        fix: "synchronise the node's clock with NTP (chrony, openntpd, systemd-timesyncd) and the controller's too",
      },
    ];
  }

  async zigbee2mqttVersion(): Promise<CheckResult[]> {
    const dirs = await this.#installDirs();
    for (const dir of dirs) {
      try {
        const pkg = JSON.parse(
          (await this.target.ssh.readFile(posix.join(dir, "package.json"), { maxBytes: MiB })).toString(
            "utf8",
          ),
        ) as { name?: string; version?: string };
        if (pkg.name !== "zigbee2mqtt" || typeof pkg.version !== "string") continue;
        const major = Number(pkg.version.split(".")[0]);
        if (major >= 2)
          return [
            {
              id: "zigbee2mqtt.version",
              ok: true,
              severity: "warning",
              detail: `zigbee2mqtt ${pkg.version} (${dir})`,
            },
          ];
        return [
          {
            id: "zigbee2mqtt.version",
            ok: false,
            severity: "warning",
            detail: `zigbee2mqtt ${pkg.version} (${dir}): zigbee2mqtt-ha is tested with 2.x`,
            fix: "update zigbee2mqtt to 2.x on every node (the same version everywhere)",
          },
        ];
      } catch (error) {
        if (!isSshError(error, "sftp") && !(error instanceof SyntaxError)) throw error;
      }
    }
    return [
      {
        id: "zigbee2mqtt.version",
        ok: false,
        severity: "warning",
        detail: `no zigbee2mqtt package.json found (looked in ${dirs.join(", ")})`,
        fix: "install zigbee2mqtt on the node (docs/nodes.md)",
      },
    ];
  }

  /** Where zigbee2mqtt is installed: from its OpenRC script or systemd unit, else next to the data dir. */
  async #installDirs(): Promise<string[]> {
    const dirs: string[] = [];
    const { start } = this.#config.service;
    const manager = managerOf(start);
    const service = serviceNameOf(start);
    let definition = "";
    if (manager === "openrc" && service) {
      try {
        definition = (await this.target.ssh.readFile(`/etc/init.d/${service}`, { maxBytes: MiB })).toString(
          "utf8",
        );
      } catch (error) {
        if (!isSshError(error, "sftp")) throw error;
      }
    } else if (manager === "systemd" && service) {
      definition = (await this.target.run(["systemctl", "cat", service], { timeoutMs: COMMAND_TIMEOUT }))
        .stdout;
    }
    for (const match of definition.matchAll(/(\/[^\s"'=]*\/)index\.js\b/g))
      dirs.push(posix.normalize(match[1] as string));
    for (const match of definition.matchAll(/^\s*(?:directory=|WorkingDirectory=)"?([^"\s]+)"?/gm))
      dirs.push(match[1] as string);
    dirs.push(posix.dirname(this.#config.data_dir));
    return [...new Set(dirs.map((d) => d.replace(/\/$/, "") || "/"))];
  }
}

interface Z2mSettings {
  serial?: { port?: unknown; adapter?: unknown };
  mqtt?: { server?: unknown };
}

function groupFix(user: string): string {
  return `as root on the node: addgroup ${user} dialout (Alpine) or usermod -aG dialout ${user} (Debian)`;
}

function mib(bytes: number): string {
  return `${Math.round(bytes / MiB)} MiB`;
}

function tail(result: ExecResult): string {
  return (result.stderr.trim() || result.stdout.trim()).split("\n").slice(-2).join(" ").slice(0, 300);
}
