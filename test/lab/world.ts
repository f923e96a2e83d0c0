/**
 * The lab as tests and tools use it: bring an instance up or attach to one, run commands in its
 * hosts, break things on purpose, read what the controller received, run the sidecar in it.
 *
 *   const lab = await Lab.up({ name: "mytest", nodes: 2 });
 *   await lab.exec("node1", ["rc-service", "zigbee2mqtt", "status"]);
 *   await lab.fault("cut-link", "node1");
 *   await lab.down();
 *
 * See docs/lab.md for the picture.
 */
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import type { MqttClient } from "mqtt";
import { parse, stringify } from "yaml";
import { planAddresses } from "./host/addressing.js";
import {
  MQTT_PORT,
  SNMP_TRAP_PORT,
  startMosquitto,
  startSnmptrapd,
  writeControllerConfigs,
} from "./host/controller.js";
import { dongleHostPaths, simulatorEntry, startDongle } from "./host/dongle.js";
import { activeFaults, applyFault, type FaultKind, type FaultOptions, isFaultKind } from "./host/faults.js";
import {
  DATA_DIR,
  FRONTEND_PORT,
  HOME_DIR,
  RC_SERVICE,
  SERIAL_PORT,
  SERVICE,
  STAGING_DIR,
  ZIGBEE_USER,
  z2mConfiguration,
} from "./host/files.js";
import {
  freeUserId,
  type HostExec,
  knownHosts,
  nodeHostKeyFingerprint,
  pidfileAlive,
  SSHD_PIDFILE,
  shapeHostFilesystem,
  sshdStart,
  sshTrustFiles,
  tcpOpen,
  writeControllerFiles,
  writeNodeFiles,
} from "./host/hosts.js";
import { ensureKeyPair } from "./host/keys.js";
import { layout as layoutOf, RUN_BASE } from "./host/layout.js";
import { withInstanceLock } from "./host/lock.js";
import {
  type BridgeSnapshot,
  type BridgeWaitOptions,
  connectMqtt,
  readBridge,
  waitForBridge,
} from "./host/mqtt.js";
import {
  createHostNamespaces,
  destroyInstance,
  type EnterOptions,
  ensurePrivateNsDir,
  enterArgv,
  listRunDirs,
} from "./host/namespaces.js";
import {
  checkLabName,
  checkNodeCount,
  DEFAULT_LAB_NAME,
  DEFAULT_NODES,
  dongleIeee,
  type HostId,
  hostAddress,
  isNodeId,
  netnsName,
  networkSettings,
  nodeIds,
  rootLinkName,
} from "./host/naming.js";
import { buildNetwork, linkLocalAddresses } from "./host/network.js";
import { LabCommandError, type RunResult, shellQuote, sleep, tryRun, waitFor } from "./host/run.js";
import { type ActiveFault, type LabInfo, type NodeInfo, readLabInfo, writeLabInfo } from "./host/state.js";
import { SimulatorClient } from "./simulator/client.js";

export type { ActiveFault, BridgeSnapshot, FaultKind, FaultOptions, HostId, LabInfo, NodeInfo, RunResult };
export { DEFAULT_LAB_NAME, LabCommandError };

export const REPO = resolve(import.meta.dirname, "..", "..");
const CACHE = process.env.Z2MHA_CACHE ?? "/var/cache/zigbee2mqtt-ha";
const Z2M_DIR = join(CACHE, "zigbee2mqtt");
const Z2M_INDEX = join(Z2M_DIR, "node_modules", "zigbee2mqtt", "index.js");
const ZNP_VENV = join(CACHE, "znp-venv");
/** zigbee2mqtt's start to "online" takes seconds; this bounds a start that hangs. */
const ONLINE_TIMEOUT = 120_000;

export interface UpOptions {
  name?: string;
  nodes?: number;
  /** Let the nodes' zigbee users ssh to each other (prototype style). Off by default: the product must not need it. */
  peerSsh?: boolean;
  /** Also offer each dongle over TCP at <node address>:6638. */
  dongleTcp?: boolean;
  /** Skip the dongles and zigbee2mqtt (hosts, sshd, Mosquitto, snmptrapd only): for tests of the lab itself. */
  zigbee?: boolean;
  /** Progress lines. */
  log?: (line: string) => void;
  /** Leave a half-built instance in place when `up` fails (to read its logs); default: take it down. */
  keepOnFailure?: boolean;
}

export interface ExecOptions extends EnterOptions {
  input?: string | Buffer;
  /** Milliseconds; default 120 s. The command and everything it started in its group is killed. */
  timeout?: number;
}

export interface HostStatus {
  host: string;
  address: string;
  reachable: boolean;
  services: Record<string, string>;
}

export interface LabStatus {
  name: string;
  complete: boolean;
  hosts: HostStatus[];
  faults: ActiveFault[];
}

export interface TrapRecord {
  received: string;
  host: string;
  transport: string;
  trapOid: string | null;
  varbinds: { oid: string; value: string }[];
}

export interface RunningSidecar {
  url: string;
  token: string;
  configPath: string;
  logPath: string;
  /** The sidecar's stdout and stderr so far. */
  output(): string;
  /** SIGTERM (or `signal`) and wait for it to exit; resolves with its exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

let sidecarCounter = 0;

export class Lab {
  readonly layout;
  private current: LabInfo;

  private constructor(
    readonly name: string,
    info: LabInfo,
  ) {
    this.layout = layoutOf(name);
    this.current = info;
  }

  /** Brings an instance up (or makes sure the one that is up is healthy) and returns it. */
  static async up(options: UpOptions = {}): Promise<Lab> {
    const name = checkLabName(options.name ?? DEFAULT_LAB_NAME);
    const nodes = checkNodeCount(options.nodes ?? DEFAULT_NODES);
    const log = options.log ?? (() => {});
    return withInstanceLock(name, async () => {
      const layout = layoutOf(name);
      const existing = readLabInfo(layout.labJson);
      if (existing?.complete) {
        if (existing.nodeIds.length !== nodes) {
          throw new Error(
            `lab ${name} is up with ${existing.nodeIds.length} nodes, not ${nodes}: take it down first`,
          );
        }
        const lab = new Lab(name, existing);
        if (await lab.heal(log)) return lab;
        log(`lab ${name} is damaged beyond repair: rebuilding it`);
      }
      await destroyInstance(layout, name);
      try {
        return await Lab.build(name, nodes, options, log);
      } catch (error) {
        if (!options.keepOnFailure) await destroyInstance(layout, name);
        throw error;
      }
    });
  }

  /** The instance that is up under this name; throws if there is none (or it is half-built). */
  static async attach(name: string = DEFAULT_LAB_NAME): Promise<Lab> {
    const info = readLabInfo(layoutOf(checkLabName(name)).labJson);
    if (!info) throw new Error(`lab ${name} is not up (no ${layoutOf(name).labJson})`);
    if (!info.complete) throw new Error(`lab ${name} is not completely up (a failed or running \`up\`)`);
    return new Lab(name, info);
  }

  /** Takes an instance down, whatever state it is in (nothing of it remains). */
  static async destroy(name: string = DEFAULT_LAB_NAME): Promise<void> {
    checkLabName(name);
    await withInstanceLock(name, () => destroyInstance(layoutOf(name), name));
  }

  get info(): LabInfo {
    return this.current;
  }

  /** Re-reads lab.json (after another process changed the instance). */
  refresh(): LabInfo {
    const info = readLabInfo(this.layout.labJson);
    if (!info) throw new Error(`lab ${this.name} is gone`);
    this.current = info;
    return info;
  }

  async down(): Promise<void> {
    await Lab.destroy(this.name);
  }

  /** Runs argv in a host (as root unless `user`), never through a shell; never throws for a non-zero exit. */
  exec(host: HostId, argv: readonly string[], options: ExecOptions = {}): Promise<RunResult> {
    this.checkHost(host);
    const { input, timeout = 120_000, ...enter } = options;
    return tryRun(enterArgv(this.layout, this.name, host, argv, enter), { input, timeout });
  }

  /** Like exec, but throws a LabCommandError unless the command exits 0. */
  async execOk(host: HostId, argv: readonly string[], options: ExecOptions = {}): Promise<RunResult> {
    const result = await this.exec(host, argv, options);
    if (result.code !== 0 || result.timedOut) throw new LabCommandError([`[${host}]`, ...argv], result);
    return result;
  }

  /** Applies a fault (or its undo) to a host; see FAULTS in host/faults.ts for the kinds. */
  async fault(kind: FaultKind | string, host: HostId, options: FaultOptions = {}): Promise<void> {
    if (!isFaultKind(kind)) throw new Error(`unknown fault ${kind}`);
    this.checkHost(host);
    await withInstanceLock(this.name, async () => {
      this.refresh();
      await applyFault(this.faultContext(), kind, host, options);
    });
  }

  async status(): Promise<LabStatus> {
    const info = this.refresh();
    const exec: HostExec = (h, argv, o) => this.exec(h, argv, o);
    const hosts: HostStatus[] = [];
    const controllerUp = (await this.exec("controller", ["true"], { timeout: 10_000 })).code === 0;
    hosts.push({
      host: "controller",
      address: `${info.controller.address} (root namespace: ${info.linkLocal.controller})`,
      reachable: controllerUp,
      services: controllerUp
        ? {
            mosquitto: (await pidfileAlive(exec, "controller", this.layout.controller.mosquittoPid))
              ? "running"
              : "stopped",
            snmptrapd: (await pidfileAlive(exec, "controller", this.layout.controller.snmptrapdPid))
              ? "running"
              : "stopped",
          }
        : {},
    });
    for (const id of info.nodeIds as HostId[]) {
      const node = info.nodes[id]!;
      const up = (await this.exec(id, ["true"], { timeout: 10_000 })).code === 0;
      const services: Record<string, string> = {};
      if (up) {
        services.sshd = (await pidfileAlive(exec, id, SSHD_PIDFILE)) ? "running" : "stopped";
        services.dongle = await this.dongleSummary(node);
        const z2m = await this.exec(id, [RC_SERVICE, SERVICE, "status"]);
        services.zigbee2mqtt =
          z2m.stdout.replace(/^\s*\*\s*status:\s*/, "").trim() || `unknown (${z2m.code})`;
      }
      hosts.push({ host: id, address: node.address, reachable: up, services });
    }
    const faults = controllerUp ? await activeFaults(this.faultContext()) : [];
    return { name: this.name, complete: info.complete, hosts, faults };
  }

  /** The node's simulated dongle, through its control socket: NVRAM, IEEE, frame counter, unplug, ... */
  simulator(node: string): SimulatorClient {
    return new SimulatorClient(this.node(node).simulator.control);
  }

  node(id: string): NodeInfo {
    const node = this.current.nodes[id];
    if (!node)
      throw new Error(`lab ${this.name} has no node ${id} (nodes: ${this.current.nodeIds.join(", ")})`);
    return node;
  }

  /** rc-service zigbee2mqtt ACTION on a node, as root. */
  service(node: string, action: "start" | "stop" | "restart" | "status" | "zap"): Promise<RunResult> {
    return this.exec(this.nodeHost(node), [RC_SERVICE, SERVICE, action]);
  }

  /**
   * ssh from the controller to a node as zigbee with the lab's key, checking the host key against
   * the controller's known_hosts (keys as of `up`). `argv` is quoted for the remote shell.
   */
  ssh(
    node: string,
    argv: readonly string[],
    options: ExecOptions & { sshOptions?: string[] } = {},
  ): Promise<RunResult> {
    const info = this.current;
    const { sshOptions = [], ...rest } = options;
    return this.exec(
      "controller",
      [
        "ssh",
        "-i",
        info.ssh.privateKey,
        "-o",
        `UserKnownHostsFile=${info.controller.knownHosts}`,
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        "BatchMode=yes",
        "-o",
        "ConnectTimeout=5",
        ...sshOptions,
        `${info.ssh.user}@${this.node(node).address}`,
        "--",
        argv.map(shellQuote).join(" "),
      ],
      rest,
    );
  }

  /** A zigpy-znp tool on a node's dongle, the prototype's way: as zigbee, through sudo. */
  znp(
    node: string,
    tool: string,
    args: readonly string[] = [],
    { timeout = 120_000 }: { timeout?: number } = {},
  ) {
    if (!/^[a-z_]+$/.test(tool)) throw new Error(`bad zigpy-znp tool name ${tool}`);
    const n = this.node(node);
    return this.exec(
      this.nodeHost(node),
      ["sudo", "-n", "python3", "-m", `zigpy_znp.tools.${tool}`, n.serialPort, ...args],
      { user: ZIGBEE_USER, timeout },
    );
  }

  /** Starts zigbee2mqtt on a node (rc-service) and waits until it is online. */
  async startZigbee2mqtt(
    node: string,
    { timeout = ONLINE_TIMEOUT }: { timeout?: number } = {},
  ): Promise<BridgeSnapshot> {
    const started = await this.service(node, "start");
    if (started.code !== 0) throw new LabCommandError([`[${node}]`, RC_SERVICE, SERVICE, "start"], started);
    return this.waitForZigbee2mqtt(node, { timeout });
  }

  /** Stops zigbee2mqtt on a node (rc-service stop; a crashed one is zapped). */
  async stopZigbee2mqtt(node: string): Promise<void> {
    const stopped = await this.service(node, "stop");
    if (stopped.code !== 0) throw new LabCommandError([`[${node}]`, RC_SERVICE, SERVICE, "stop"], stopped);
  }

  /** The configuration.yaml the lab wrote on a node at `up`. */
  configuration(node: string): string {
    const info = this.current;
    return z2mConfiguration({
      lab: this.name,
      node,
      nodeAddress: this.node(node).address,
      mqttServer: info.controller.labMqttUrl,
      network: info.network,
    });
  }

  /**
   * Puts a node back as `up` left a standby: zigbee2mqtt stopped, dongle blank (nvram_reset),
   * data dir holding only the lab's configuration.yaml.
   */
  async resetNode(node: string): Promise<void> {
    await this.stopZigbee2mqtt(node);
    const reset = await this.znp(node, "nvram_reset");
    if (reset.code !== 0) throw new LabCommandError([`[${node}]`, "nvram_reset"], reset);
    const n = this.node(node);
    await this.execOk(this.nodeHost(node), ["find", n.dataDir, "-mindepth", "1", "-delete"]);
    await this.writeFile(this.nodeHost(node), `${n.dataDir}/configuration.yaml`, this.configuration(node), {
      user: ZIGBEE_USER,
    });
  }

  /** MQTT URL of the controller's Mosquitto, reachable from the root namespace. */
  get mqttUrl(): string {
    return this.current.controller.mqttUrl;
  }

  /** A connected MQTT client (the caller ends it). */
  mqtt(): Promise<MqttClient> {
    return connectMqtt(this.mqttUrl);
  }

  /** The retained bridge/state and bridge/info now. */
  bridge(): Promise<BridgeSnapshot> {
    return readBridge(this.mqttUrl);
  }

  waitForBridge(
    accept: (bridge: BridgeSnapshot) => boolean,
    options?: BridgeWaitOptions,
  ): Promise<BridgeSnapshot> {
    return waitForBridge(this.mqttUrl, accept, options);
  }

  /**
   * Waits until zigbee2mqtt on `node` is online: bridge/state online and bridge/info published by
   * that node (its frontend host). Fails early, with its log, if its service crashed.
   */
  async waitForZigbee2mqtt(
    node: string,
    { timeout = ONLINE_TIMEOUT }: { timeout?: number } = {},
  ): Promise<BridgeSnapshot> {
    const address = this.node(node).address;
    const online = waitForBridge(
      this.mqttUrl,
      (b) => b.state === "online" && b.info?.config?.frontend?.host === address,
      {
        timeout,
        what: `zigbee2mqtt on ${node} to be online`,
      },
    );
    let settled = false;
    const watched = online.finally(() => {
      settled = true;
    });
    const crashed = (async () => {
      while (!settled) {
        if ((await this.service(node, "status")).code === 32) {
          throw new Error(`zigbee2mqtt on ${node} crashed:\n${await this.zigbee2mqttLog(node, 30)}`);
        }
        await sleep(500);
      }
      return watched;
    })();
    try {
      return await Promise.race([watched, crashed]);
    } catch (error) {
      const message = (error as Error).message;
      if (message.includes("crashed")) throw error;
      throw new Error(`${message}\nzigbee2mqtt log on ${node}:\n${await this.zigbee2mqttLog(node, 30)}`);
    }
  }

  /** The last lines of zigbee2mqtt's console output on a node (/var/log/zigbee2mqtt.log). */
  async zigbee2mqttLog(node: string, lines = 50): Promise<string> {
    const result = await this.exec(this.nodeHost(node), [
      "tail",
      "-n",
      String(lines),
      `/var/log/${SERVICE}.log`,
    ]);
    return result.stdout;
  }

  async readFile(host: HostId, path: string): Promise<string> {
    return (await this.execOk(host, ["cat", "--", path])).stdout;
  }

  /** Writes a file in a host atomically (temp file + rename), as `user` (default root), with `mode`. */
  async writeFile(
    host: HostId,
    path: string,
    content: string | Buffer,
    { user, mode = "0644" }: { user?: string; mode?: string } = {},
  ): Promise<void> {
    await this.execOk(
      host,
      [
        "/bin/sh",
        "-c",
        'tmp="$1.lab-tmp.$$"; cat >"$tmp" && chmod "$2" "$tmp" && mv -f "$tmp" "$1"',
        "sh",
        path,
        mode,
      ],
      { input: content, ...(user ? { user } : {}) },
    );
  }

  /** Every trap the controller's snmptrapd received so far, oldest first. */
  traps(): TrapRecord[] {
    const text = existsSync(this.current.controller.trapJson)
      ? readFileSync(this.current.controller.trapJson, "utf8")
      : "";
    return text
      .split("\n")
      .filter(Boolean)
      .map((line) => {
        const raw = JSON.parse(line) as Omit<TrapRecord, "trapOid"> & { trap_oid: string | null };
        return {
          received: raw.received,
          host: raw.host,
          transport: raw.transport,
          trapOid: raw.trap_oid,
          varbinds: raw.varbinds,
        };
      });
  }

  /** Turns node-to-node ssh for the zigbee users on or off (prototype style). */
  async setPeerSsh(enabled: boolean): Promise<void> {
    const info = this.current;
    const nodes = info.nodeIds.map((id) => ({ id, address: info.nodes[id]!.address }));
    for (const id of info.nodeIds) {
      const trust = sshTrustFiles(this.layout, nodes, id, enabled);
      await this.writeFile(id as HostId, `${HOME_DIR}/.ssh/authorized_keys`, trust.authorizedKeys, {
        user: ZIGBEE_USER,
        mode: "0600",
      });
    }
    this.update((i) => {
      i.peerSsh = enabled;
    });
  }

  /**
   * Writes a sidecar config for this lab and returns its path. `overrides` is merged into the
   * generated config (objects deeply, other values replace); `nodes` may be an object keyed by
   * node id to change single nodes. Each call gets its own state dir unless overridden.
   */
  sidecarConfig(overrides: Record<string, unknown> = {}): string {
    const info = this.current;
    sidecarCounter += 1;
    const dir = join(
      this.layout.controller.sidecarDir,
      `sidecar-${Date.now().toString(36)}-${process.pid}-${sidecarCounter}`,
    );
    mkdirSync(dir, { recursive: true });
    const base = {
      cluster_name: `lab-${this.name}`,
      state_dir: join(dir, "state"),
      log_level: "info",
      server: { host: info.linkLocal.controller, port: 8485 },
      mqtt: { url: `mqtt://127.0.0.1:${MQTT_PORT}`, base_topic: "zigbee2mqtt" },
      nodes: info.nodeIds.map((id) => {
        const node = info.nodes[id]!;
        return {
          id,
          ssh: {
            host: node.address,
            port: node.ssh.port,
            user: node.ssh.user,
            private_key: info.ssh.privateKey,
            host_key: node.ssh.originalHostKeyFingerprint,
          },
          data_dir: node.dataDir,
          staging_dir: node.stagingDir,
          coordinator: { port: node.serialPort, tools: ["sudo", "python3", "-m", "zigpy_znp.tools"] },
          service: {
            start: ["sudo", "rc-service", SERVICE, "start"],
            stop: ["sudo", "rc-service", SERVICE, "stop"],
            status: ["sudo", "rc-service", SERVICE, "status"],
          },
          overrides: { "frontend.host": node.address, "serial.port": node.serialPort },
        };
      }),
      snmp: {
        targets: [
          { host: info.controller.address, port: SNMP_TRAP_PORT, version: "2c", community: "public" },
        ],
      },
    };
    const merged = mergeConfig(base, overrides);
    const path = join(dir, "config.yaml");
    writeFileSync(path, `# sidecar config for lab ${this.name} (generated)\n${stringify(merged)}`, {
      mode: 0o600,
    });
    return path;
  }

  /**
   * Starts `node dist/cli.js serve --config <configPath>` inside the controller and waits until it
   * answers /healthz; returns its URL (reachable from the root namespace when the server listens on
   * the controller's link-local address, as generated configs do) and its token.
   */
  async startSidecar(
    configPath: string,
    { timeout = 30_000, env = {} }: { timeout?: number; env?: Record<string, string> } = {},
  ): Promise<RunningSidecar> {
    const config = parse(readFileSync(configPath, "utf8")) as {
      state_dir?: string;
      server?: { host?: string; port?: number; token?: string; token_file?: string };
    };
    const host = config.server?.host ?? "127.0.0.1";
    const port = config.server?.port ?? 8485;
    const url = `http://${host}:${port}`;
    const dir = join(configPath, "..");
    const logPath = join(dir, "sidecar.log");
    const pidfile = join(dir, "sidecar.pid");
    const cli = join(REPO, "dist", "cli.js");
    if (!existsSync(cli)) throw new Error(`${cli} is missing: run npm run build`);
    const argv = enterArgv(
      this.layout,
      this.name,
      "controller",
      [
        "/bin/sh",
        "-c",
        'echo $$ >"$1"; shift; exec "$@"',
        "sh",
        pidfile,
        process.execPath,
        cli,
        "serve",
        "--config",
        configPath,
      ],
      { cwd: REPO, env },
    );
    const out = openSync(logPath, "a");
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ["ignore", out, out] });
    const exited = new Promise<number | null>((done) => child.on("exit", (code) => done(code)));
    const output = () => (existsSync(logPath) ? readFileSync(logPath, "utf8") : "");
    const reachableFromRoot = host === this.current.linkLocal.controller;
    await waitFor(
      `the sidecar at ${url}`,
      async () => {
        if (child.exitCode !== null)
          throw new Error(`it exited with ${child.exitCode}:\n${output().slice(-3000)}`);
        if (reachableFromRoot) {
          const response = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(2_000) });
          return response.ok ? true : undefined;
        }
        const probe = await this.exec("controller", ["curl", "-fsS", "-m", "2", `${url}/healthz`]);
        return probe.code === 0 ? true : undefined;
      },
      { timeout, interval: 200 },
    ).catch((error: Error) => {
      child.kill("SIGKILL");
      throw new Error(`the sidecar did not come up: ${error.message}`);
    });
    const tokenFile =
      config.server?.token_file ?? join(config.state_dir ?? "/var/lib/zigbee2mqtt-ha", "token");
    const token = config.server?.token ?? readFileSync(tokenFile, "utf8").trim();
    const stop = async (signal: NodeJS.Signals = "SIGTERM") => {
      if (child.exitCode === null && child.signalCode === null) {
        await this.exec("controller", [
          "/bin/sh",
          "-c",
          'pid=$(cat "$1") && kill "-$2" "$pid"',
          "sh",
          pidfile,
          signal.replace(/^SIG/, ""),
        ]);
      }
      return exited;
    };
    return { url, token, configPath, logPath, output, stop };
  }

  // --- internals -----------------------------------------------------------------------------------

  private nodeHost(node: string): HostId {
    this.node(node);
    return node as HostId;
  }

  private checkHost(host: string): asserts host is HostId {
    if (host !== "controller" && !(isNodeId(host) && this.current.nodes[host])) {
      throw new Error(
        `lab ${this.name} has no host ${host} (hosts: controller, ${this.current.nodeIds.join(", ")})`,
      );
    }
  }

  private update(change: (info: LabInfo) => void): LabInfo {
    const info = readLabInfo(this.layout.labJson) ?? this.current;
    change(info);
    writeLabInfo(this.layout.labJson, info);
    this.current = info;
    return info;
  }

  private faultContext() {
    return {
      name: this.name,
      layout: this.layout,
      repo: REPO,
      info: () => this.current,
      update: (change: (info: LabInfo) => void) => this.update(change),
      exec: ((h, argv, o) => this.exec(h, argv, o)) as HostExec,
    };
  }

  private async dongleSummary(node: NodeInfo): Promise<string> {
    if (!this.current.zigbee) return "none (lab without zigbee)";
    try {
      const s = await new SimulatorClient(node.simulator.control, 3_000).status();
      return `${s.unplugged ? "unplugged" : "plugged"}, ${s.configured ? "formed" : "blank"}, ieee ${s.ieee}, frame counter ${s.nwk_frame_counter}`;
    } catch (error) {
      return `not answering (${(error as Error).message})`;
    }
  }

  /**
   * Restarts whatever basic service of an instance that is up has stopped (Mosquitto, snmptrapd,
   * sshd, dongles); false when a host itself is gone (then the instance is rebuilt).
   */
  private async heal(log: (line: string) => void): Promise<boolean> {
    const exec: HostExec = (h, argv, o) => this.exec(h, argv, o);
    const info = this.current;
    for (const host of ["controller", ...info.nodeIds] as HostId[]) {
      if ((await this.exec(host, ["true"], { timeout: 10_000 })).code !== 0) return false;
    }
    const addresses = { lab: info.controller.address, linkLocal: info.linkLocal.controller };
    await startMosquitto(exec, this.layout, addresses);
    await startSnmptrapd(exec, this.layout, addresses, REPO);
    for (const id of info.nodeIds as HostId[]) {
      if (!(await pidfileAlive(exec, id, SSHD_PIDFILE))) {
        log(`${id}: starting sshd`);
        await sshdStart(exec, id);
      }
      if (info.zigbee) {
        await startDongle(exec, {
          repo: REPO,
          node: id,
          ieee: info.nodes[id]!.ieee,
          nodeLabDir: this.layout.node(id).lab,
          ...(info.nodes[id]!.simulator.tcp ? { tcp: info.nodes[id]!.simulator.tcp } : {}),
        });
      }
    }
    log(`lab ${this.name} is up`);
    return true;
  }

  private static async build(
    name: string,
    count: number,
    options: UpOptions,
    log: (line: string) => void,
  ): Promise<Lab> {
    const zigbee = options.zigbee ?? true;
    preflight(zigbee);
    const started = Date.now();
    const step = (what: string) => log(`[${((Date.now() - started) / 1000).toFixed(1)}s] ${what}`);
    const layout = layoutOf(name);
    const others = listRunDirs(RUN_BASE)
      .filter((other) => other !== name)
      .map((other) => readLabInfo(layoutOf(other).labJson))
      .filter((other): other is LabInfo => other !== undefined)
      .map((other) => ({
        subnet: other.subnet.replace(/\/24$/, ""),
        linkLocal: Number(other.linkLocal.root.split(".")[2]),
      }));
    const plan = await planAddresses(name, others);
    const ids = nodeIds(count);
    const ll = linkLocalAddresses(plan.linkLocal);
    const controllerAddress = hostAddress(plan.subnet, "controller");
    step(
      `lab ${name}: subnet ${plan.subnet}/24, controller ${controllerAddress} (root namespace: ${ll.controller})`,
    );

    mkdirSync(layout.keysDir, { recursive: true, mode: 0o700 });
    await ensureKeyPair(layout.privateKey, `controller@lab-${name}`);
    const uid = freeUserId();
    const hosts = [
      { address: controllerAddress, names: ["controller"] },
      ...ids.map((id) => ({ address: hostAddress(plan.subnet, id), names: [id] })),
    ];
    const nodesList = ids.map((id) => ({ id, address: hostAddress(plan.subnet, id) }));
    await Promise.all(
      ids.map((id) =>
        writeNodeFiles(layout, {
          id,
          hosts,
          uid,
          z2mIndex: Z2M_INDEX,
          nodeBinary: process.execPath,
          znpVenv: ZNP_VENV,
        }),
      ),
    );
    for (const id of ids) {
      const trust = sshTrustFiles(layout, nodesList, id, options.peerSsh ?? false);
      writeFileSync(join(layout.node(id).home, ".ssh", "authorized_keys"), trust.authorizedKeys, {
        mode: 0o600,
      });
      writeFileSync(join(layout.node(id).home, ".ssh", "known_hosts"), knownHosts(layout, nodesList), {
        mode: 0o644,
      });
    }
    writeControllerFiles(layout, hosts, nodesList);
    const addresses = { lab: controllerAddress, linkLocal: ll.controller };
    writeControllerConfigs(layout, addresses);

    const nodes: Record<string, NodeInfo> = {};
    for (const { id, address } of nodesList) {
      const fp = await nodeHostKeyFingerprint(layout, id);
      const paths = dongleHostPaths(layout.node(id).lab);
      nodes[id] = {
        id,
        hostname: id,
        netns: netnsName(name, id),
        address,
        ieee: dongleIeee(name, id),
        ssh: {
          host: address,
          port: 22,
          user: ZIGBEE_USER,
          hostKeyFingerprint: fp,
          originalHostKeyFingerprint: fp,
        },
        frontend: { host: address, port: FRONTEND_PORT },
        dataDir: DATA_DIR,
        homeDir: HOME_DIR,
        stagingDir: STAGING_DIR,
        serialPort: SERIAL_PORT,
        zigbeeKey: { private: layout.node(id).zigbeeKey, public: `${layout.node(id).zigbeeKey}.pub` },
        simulator: {
          control: paths.control,
          state: paths.state,
          log: paths.log,
          ...(options.dongleTcp ? { tcp: `${address}:6638` } : {}),
        },
      };
    }
    const info: LabInfo = {
      version: 1,
      name,
      complete: false,
      createdAt: new Date().toISOString(),
      repo: REPO,
      runDir: layout.runDir,
      subnet: `${plan.subnet}/24`,
      linkLocal: { rootInterface: rootLinkName(name), root: ll.root, controller: ll.controller },
      controller: {
        hostname: "controller",
        netns: netnsName(name, "controller"),
        address: controllerAddress,
        mqttUrl: `mqtt://${ll.controller}:${MQTT_PORT}`,
        labMqttUrl: `mqtt://${controllerAddress}:${MQTT_PORT}`,
        snmptrapd: { host: ll.controller, port: SNMP_TRAP_PORT, labHost: controllerAddress },
        trapLog: layout.controller.trapLog,
        trapJson: layout.controller.trapJson,
        knownHosts: layout.controller.knownHosts,
        sidecarDir: layout.controller.sidecarDir,
      },
      ssh: { user: ZIGBEE_USER, privateKey: layout.privateKey, publicKey: `${layout.privateKey}.pub` },
      network: networkSettings(name),
      nodeIds: ids,
      nodes,
      z2m: { dir: Z2M_DIR, version: z2mVersion() },
      znp: { venv: ZNP_VENV },
      peerSsh: options.peerSsh ?? false,
      zigbee,
    };
    writeLabInfo(layout.labJson, info);
    const lab = new Lab(name, info);
    const exec: HostExec = (h, argv, o) => lab.exec(h, argv, o);

    await buildNetwork({
      name,
      subnet: plan.subnet,
      linkLocal: plan.linkLocal,
      hosts: [
        { id: "controller", address: controllerAddress },
        ...nodesList.map((n) => ({ id: n.id, address: n.address })),
      ],
    });
    step("network built");
    const allHosts: HostId[] = ["controller", ...ids];
    await ensurePrivateNsDir(layout);
    await Promise.all(allHosts.map((host) => createHostNamespaces(layout, name, host)));
    await Promise.all(
      allHosts.map((host) => shapeHostFilesystem(layout, name, host, { uid, z2mDir: Z2M_DIR })),
    );
    step("hosts created");

    await startMosquitto(exec, layout, addresses);
    await startSnmptrapd(exec, layout, addresses, REPO);
    await Promise.all(
      ids.map(async (id) => {
        await sshdStart(exec, id);
        await waitFor(`sshd on ${id}`, async () =>
          (await tcpOpen(exec, "controller", nodes[id]!.address, 22)) ? true : undefined,
        );
        if (zigbee) {
          await startDongle(exec, {
            repo: REPO,
            node: id,
            ieee: nodes[id]!.ieee,
            nodeLabDir: layout.node(id).lab,
            ...(nodes[id]!.simulator.tcp ? { tcp: nodes[id]!.simulator.tcp } : {}),
          });
        }
        await lab.writeFile(id, `${DATA_DIR}/configuration.yaml`, lab.configuration(id), {
          user: ZIGBEE_USER,
        });
      }),
    );
    step(`controller and nodes running (Mosquitto, snmptrapd, sshd${zigbee ? ", dongles" : ""})`);

    if (zigbee) {
      const first = ids[0]!;
      const start = await lab.service(first, "start");
      if (start.code !== 0)
        throw new Error(`zigbee2mqtt did not start on ${first}: ${start.stdout}${start.stderr}`);
      await lab.waitForZigbee2mqtt(first);
      step(`zigbee2mqtt online on ${first}`);
    }
    lab.update((i) => {
      i.complete = true;
    });
    step(`lab ${name} is up`);
    return lab;
  }
}

function z2mVersion(): string {
  try {
    const pkg = JSON.parse(
      readFileSync(join(Z2M_DIR, "node_modules", "zigbee2mqtt", "package.json"), "utf8"),
    ) as {
      version: string;
    };
    return pkg.version;
  } catch {
    return "unknown";
  }
}

/** Fails with everything that is missing at once, and what installs it. */
function preflight(zigbee: boolean): void {
  if (process.getuid?.() !== 0) throw new Error("the lab needs root (network and mount namespaces)");
  const missing: string[] = [];
  const commands = [
    "/usr/sbin/sshd",
    "/usr/bin/ssh-keygen",
    "/usr/bin/rsync",
    "/usr/sbin/mosquitto",
    "/usr/sbin/snmptrapd",
    "/usr/bin/snmptrap",
    "/usr/bin/socat",
    "/usr/bin/sudo",
    "/usr/bin/nsenter",
    "/usr/bin/unshare",
    "/usr/bin/setpriv",
    "/usr/sbin/iptables",
    "/usr/bin/python3",
    "/usr/bin/curl",
  ];
  for (const command of commands) if (!existsSync(command)) missing.push(command);
  if (!existsSync(join(ZNP_VENV, "bin", "python3"))) missing.push(`${ZNP_VENV} (scripts/setup/30-znp.sh)`);
  if (zigbee) {
    if (!existsSync(Z2M_INDEX)) missing.push(`${Z2M_INDEX} (scripts/setup/40-z2m.sh)`);
    const sim = simulatorEntry(REPO);
    for (const file of [sim.tsx, sim.main]) if (!existsSync(file)) missing.push(file);
  }
  if (missing.length > 0) {
    throw new Error(
      `the lab cannot start; missing:\n  ${missing.join("\n  ")}\nrun scripts/setup.sh (as root) first`,
    );
  }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Deep merge for config overrides; `nodes` given as an object keyed by id merges into those nodes. */
export function mergeConfig(
  base: Record<string, unknown>,
  overrides: Record<string, unknown>,
): Record<string, unknown> {
  const result: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(overrides)) {
    const current = result[key];
    if (value === undefined) {
      delete result[key];
    } else if (key === "nodes" && Array.isArray(current) && isPlainObject(value)) {
      const unknown = Object.keys(value).filter(
        (id) => !current.some((n) => isPlainObject(n) && n.id === id),
      );
      if (unknown.length > 0) throw new Error(`sidecarConfig: no node ${unknown.join(", ")} to override`);
      result[key] = current.map((n) =>
        isPlainObject(n) && isPlainObject(value[n.id as string])
          ? mergeConfig(n, value[n.id as string] as Record<string, unknown>)
          : n,
      );
    } else if (isPlainObject(current) && isPlainObject(value)) {
      result[key] = mergeConfig(current, value);
    } else {
      result[key] = value;
    }
  }
  return result;
}
