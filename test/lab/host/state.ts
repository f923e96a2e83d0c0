import { existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import type { LinkMode } from "../simulator/link.js";
import type { DongleAdapter, NetworkSettings } from "./naming.js";

/** A fault in effect, as `status` observes it on the hosts. */
export interface ActiveFault {
  host: string;
  kind: string;
  detail?: string;
}

export interface NetemState {
  loss: number;
  delay: number;
  /** Root-namespace pid of the delay helper, when there is a delay. */
  helperPid?: number;
}

export interface NodeInfo {
  id: string;
  hostname: string;
  netns: string;
  address: string;
  /** The simulated dongle's IEEE address, 16 hex digits. */
  ieee: string;
  /** Its family (absent: zstack, as labs built before ember dongles). */
  adapter?: DongleAdapter;
  ssh: {
    host: string;
    port: number;
    user: string;
    /** The fingerprint the node's sshd presents now ("SHA256:..."). */
    hostKeyFingerprint: string;
    /** The fingerprint it had at `up` (what the controller's known_hosts and sidecar configs pin). */
    originalHostKeyFingerprint: string;
  };
  frontend: { host: string; port: number };
  /** Paths in the node's own view. */
  dataDir: string;
  homeDir: string;
  stagingDir: string;
  serialPort: string;
  /** The node's own zigbee key pair (for node-to-node ssh, prototype style), root-namespace paths. */
  zigbeeKey: { private: string; public: string };
  simulator: {
    /** Root-namespace paths. */
    control: string;
    state: string;
    log: string;
    /** host:port when the dongle is also offered over TCP. */
    tcp?: string;
  };
}

/** lab.json: everything tests and tools need to know about one instance. */
export interface LabInfo {
  version: 1;
  name: string;
  /** False while `up` is still building the instance (or if it failed half-way). */
  complete: boolean;
  createdAt: string;
  repo: string;
  runDir: string;
  /** "10.a.b.0/24" */
  subnet: string;
  linkLocal: {
    /** The root namespace's interface and address; the controller's address on the /30. */
    rootInterface: string;
    root: string;
    controller: string;
  };
  controller: {
    hostname: string;
    netns: string;
    address: string;
    /** MQTT as reachable from the root namespace (tests) and from the lab's hosts. */
    mqttUrl: string;
    labMqttUrl: string;
    snmptrapd: { host: string; port: number; labHost: string };
    /** snmptrapd's own log, and the same traps as JSON lines (what lab.traps() reads). */
    trapLog: string;
    trapJson: string;
    /** known_hosts with every node's host key as of `up`, for ssh from the controller. */
    knownHosts: string;
    /** Where sidecar configs, state dirs and logs started by the lab go. */
    sidecarDir: string;
  };
  ssh: { user: string; privateKey: string; publicKey: string };
  network: NetworkSettings;
  nodeIds: string[];
  nodes: Record<string, NodeInfo>;
  z2m: { dir: string; version: string };
  znp: { venv: string };
  /** Whether nodes trust each other's zigbee key (prototype style; the product must not need it). */
  peerSsh: boolean;
  /** Whether the nodes have dongles and zigbee2mqtt (false: hosts and services only). */
  zigbee: boolean;
  /**
   * The dongles' serial line timing as the lab last set it (absent in older lab.json: instant).
   * A restarted dongle comes back with it.
   */
  link?: LinkMode;
  /** Packet loss and delay in effect, per host (the one fault whose settings cannot be read back). */
  netem?: Record<string, NetemState>;
}

export function readLabInfo(path: string): LabInfo | undefined {
  if (!existsSync(path)) return undefined;
  try {
    const info = JSON.parse(readFileSync(path, "utf8")) as LabInfo;
    return info.version === 1 ? info : undefined;
  } catch {
    return undefined;
  }
}

export function writeLabInfo(path: string, info: LabInfo): void {
  const temp = `${path}.${process.pid}.tmp`;
  writeFileSync(temp, `${JSON.stringify(info, null, 2)}\n`);
  renameSync(temp, path);
}
