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
import { existsSync, readFileSync } from "node:fs";
import type { MqttClient } from "mqtt";
import { buildInstance, healInstance } from "./host/bringup.js";
import { activeFaults, applyFault, type FaultKind, type FaultOptions, isFaultKind } from "./host/faults.js";
import { HOME_DIR, RC_SERVICE, SERVICE, ZIGBEE_USER, z2mConfiguration } from "./host/files.js";
import { type HostExec, pidfileAlive, SSHD_PIDFILE, sshTrustFiles } from "./host/hosts.js";
import { REPO } from "./host/install.js";
import { layout as layoutOf } from "./host/layout.js";
import { withInstanceLock } from "./host/lock.js";
import {
  type BridgeSnapshot,
  type BridgeWaitOptions,
  connectMqtt,
  readBridge,
  waitForBridge,
} from "./host/mqtt.js";
import { destroyInstance, type EnterOptions, enterArgv } from "./host/namespaces.js";
import {
  checkLabName,
  checkNodeCount,
  DEFAULT_LAB_NAME,
  DEFAULT_NODES,
  type DongleAdapter,
  type HostId,
  isNodeId,
} from "./host/naming.js";
import { LabCommandError, type RunResult, shellQuote, sleep, tryRun } from "./host/run.js";
import { type RunningSidecar, startSidecarInController, writeSidecarConfig } from "./host/sidecar.js";
import { type ActiveFault, type LabInfo, type NodeInfo, readLabInfo, writeLabInfo } from "./host/state.js";
import { SimulatorClient } from "./simulator/client.js";
import type { LinkMode } from "./simulator/link.js";
import { EmberSimulatorClient } from "./simulator-ember/client.js";
import { EmberDongleView } from "./simulator-ember/zstack-view.js";

export type {
  ActiveFault,
  BridgeSnapshot,
  FaultKind,
  FaultOptions,
  HostId,
  LabInfo,
  NodeInfo,
  RunningSidecar,
  RunResult,
};
export { DEFAULT_LAB_NAME, LabCommandError, REPO };

/** zigbee2mqtt's start to "online" takes seconds; this bounds a start that hangs. */
const ONLINE_TIMEOUT = 120_000;

export interface UpOptions {
  name?: string;
  nodes?: number;
  /** Let the nodes' zigbee users ssh to each other (prototype style). Off by default: the product must not need it. */
  peerSsh?: boolean;
  /** Also offer each dongle over TCP at <node address>:6638. */
  dongleTcp?: boolean;
  /**
   * The dongles' serial line: instant (default: bytes pass at once, fast tests) or realistic
   * (115200 baud 8N1, chip latency, flash costs; docs/simulator.md). On an instance that is up, a
   * different mode is applied to every dongle from its next host session on.
   */
  link?: LinkMode;
  /**
   * The dongles' family: zstack (default, the Z-Stack simulator) or ember (the EmberZNet one), for
   * every node or per node. An instance that is up keeps the families it was built with.
   */
  adapter?: DongleAdapter | Record<string, DongleAdapter>;
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
        if (await healInstance(lab, log)) {
          if (options.link && (existing.link ?? "instant") !== options.link) {
            await lab.setLink(options.link);
            log(`dongles' link: ${options.link} from their next host session on`);
          }
          return lab;
        }
        log(`lab ${name} is damaged beyond repair: rebuilding it`);
      }
      await destroyInstance(layout, name);
      try {
        return await buildInstance(name, nodes, options, log, (info) => new Lab(name, info));
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
    const exec = this.hostExec();
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
    const n = this.node(node);
    return n.adapter === "ember"
      ? new EmberDongleView(n.simulator.control)
      : new SimulatorClient(n.simulator.control);
  }

  /** An ember node's dongle with its own status (EUI64 token, network up), for ember tests. */
  ember(node: string): EmberSimulatorClient {
    const n = this.node(node);
    if (n.adapter !== "ember") throw new Error(`${node}'s dongle is not an ember one`);
    return new EmberSimulatorClient(n.simulator.control);
  }

  /**
   * Sets the serial line timing of the nodes' dongles (all by default), from each dongle's next host
   * session on: a zigbee2mqtt that holds the port keeps its session's timing until it restarts.
   * Recorded in lab.json when it covers every node, so a restarted dongle keeps it.
   */
  async setLink(mode: LinkMode, nodes: readonly string[] = this.current.nodeIds): Promise<void> {
    if (!this.current.zigbee) throw new Error(`lab ${this.name} has no dongles (up --no-zigbee)`);
    for (const node of nodes) await this.simulator(node).setLink({ mode });
    if (this.current.nodeIds.every((id) => nodes.includes(id)))
      this.update((info) => {
        info.link = mode;
      });
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

  /** A zigpy-znp tool on a node's dongle, as the product runs it: as zigbee (in dialout), without sudo. */
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
      ["python3", "-m", `zigpy_znp.tools.${tool}`, n.serialPort, ...args],
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
      adapter: this.node(node).adapter ?? "zstack",
    });
  }

  /**
   * Puts a node back as `up` left a standby: zigbee2mqtt stopped, dongle blank (nvram_reset),
   * data dir holding only the lab's configuration.yaml.
   */
  async resetNode(node: string): Promise<void> {
    await this.stopZigbee2mqtt(node);
    if (this.node(node).adapter === "ember") {
      // As zigbee2mqtt's own wipe: the network tokens erased (leaveNetwork), the EUI64 token kept.
      await this.ember(node).leave();
    } else {
      const reset = await this.znp(node, "nvram_reset");
      if (reset.code !== 0) throw new LabCommandError([`[${node}]`, "nvram_reset"], reset);
    }
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
    return writeSidecarConfig(this.current, this.layout, overrides);
  }

  /**
   * Starts `node dist/cli.js serve --config <configPath>` inside the controller and waits until it
   * answers /healthz; returns its URL (reachable from the root namespace when the server listens on
   * the controller's link-local address, as generated configs do) and its token.
   */
  startSidecar(configPath: string, options: { timeout?: number; env?: Record<string, string> } = {}) {
    return startSidecarInController(this.current, this.layout, this.hostExec(), configPath, options);
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

  private hostExec(): HostExec {
    return (host, argv, options) => this.exec(host, argv, options);
  }

  private faultContext() {
    return {
      name: this.name,
      layout: this.layout,
      info: () => this.current,
      update: (change: (info: LabInfo) => void) => this.update(change),
      exec: this.hostExec(),
    };
  }

  private async dongleSummary(node: NodeInfo): Promise<string> {
    if (!this.current.zigbee) return "none (lab without zigbee)";
    try {
      const s = await new SimulatorClient(node.simulator.control, 3_000).status();
      return `${s.unplugged ? "unplugged" : "plugged"}, ${s.configured ? "formed" : "blank"}, ieee ${s.ieee}, frame counter ${s.nwk_frame_counter}, link ${s.link?.mode ?? "instant"}`;
    } catch (error) {
      return `not answering (${(error as Error).message})`;
    }
  }
}
