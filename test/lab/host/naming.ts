import { createHash } from "node:crypto";

/** The default instance, used by `npm run lab` and `npm run demo`. */
export const DEFAULT_LAB_NAME = "z2mha";
export const DEFAULT_NODES = 2;
export const MAX_NODES = 20;

export type HostId = "controller" | `node${number}`;

/** Instance names end up in interface names (15 characters at most), hence short. */
export function checkLabName(name: string): string {
  if (!/^[a-z][a-z0-9]{0,9}$/.test(name)) {
    throw new Error(
      `bad lab name ${JSON.stringify(name)}: use 1-10 lowercase letters or digits, starting with a letter`,
    );
  }
  return name;
}

export function checkNodeCount(nodes: number): number {
  if (!Number.isInteger(nodes) || nodes < 1 || nodes > MAX_NODES) {
    throw new Error(`bad node count ${nodes}: use 1 to ${MAX_NODES}`);
  }
  return nodes;
}

export function nodeIds(count: number): `node${number}`[] {
  return Array.from({ length: count }, (_, i) => `node${i + 1}` as const);
}

export function isNodeId(host: string): host is `node${number}` {
  return /^node[1-9][0-9]*$/.test(host);
}

/** Network namespace names: `<name>-br` holds the bridge, `<name>-ctl` the controller, `<name>-nodeN` the nodes. */
export function netnsName(name: string, host: HostId | "bridge"): string {
  if (host === "bridge") return `${name}-br`;
  if (host === "controller") return `${name}-ctl`;
  return `${name}-${host}`;
}

/** The root namespace's end of the link-local veth to the controller. */
export function rootLinkName(name: string): string {
  return `${name}-ll`;
}

/** The bridge-side port of a host's veth, inside `<name>-br`. */
export function bridgePortName(host: HostId): string {
  return host === "controller" ? "ctl" : host;
}

function digest(...parts: (string | number)[]): Buffer {
  return createHash("sha256").update(parts.join("\0")).digest();
}

/** A private /24 for attempt `attempt` (0, 1, ...), e.g. "10.83.17.0": the caller checks it is free. */
export function candidateSubnet(name: string, attempt: number): string {
  const h = digest("subnet", name, attempt);
  return `10.${(h[0]! % 254) + 1}.${h[1]}.0`;
}

/** The third octet k of 169.254.k.0/30 for attempt `attempt`; 169 is skipped (169.254.169.254 is cloud metadata). */
export function candidateLinkLocal(name: string, attempt: number): number {
  const h = digest("link-local", name, attempt);
  const k = (h[0]! % 253) + 1;
  return k >= 169 ? k + 1 : k;
}

export function hostAddress(subnet: string, host: HostId): string {
  const base = subnet.split(".").slice(0, 3).join(".");
  return `${base}.${host === "controller" ? 1 : 10 + Number(host.slice(4))}`;
}

/** A TI-style IEEE address (OUI 00:12:4b) per node and instance, as 16 hex digits. */
export function dongleIeee(name: string, node: string, adapter: DongleAdapter = "zstack"): string {
  // Texas Instruments' and Silicon Labs' OUIs, as real dongles of each family carry.
  const prefix = adapter === "ember" ? "8c65a3ff" : "00124b00";
  return `${prefix}${digest("ieee", name, node).subarray(0, 4).toString("hex")}`;
}

/** The dongle family a lab node simulates: TI Z-Stack (zigbee2mqtt's zstack) or EmberZNet (ember). */
export type DongleAdapter = "zstack" | "ember";

export interface NetworkSettings {
  panId: number;
  extendedPanId: number[];
  networkKey: number[];
  channel: number;
}

/**
 * The Zigbee network the lab's configuration.yaml describes: fixed per instance rather than
 * GENERATE, because zigbee2mqtt writes generated values back into configuration.yaml with js-yaml,
 * which drops the comments that later tests need to see preserved.
 */
export function networkSettings(name: string): NetworkSettings {
  const h = digest("network", name);
  return {
    panId: 0x1000 + (h.readUInt16BE(0) % 0xe000),
    extendedPanId: [...h.subarray(2, 10)],
    networkKey: [...h.subarray(10, 26)],
    channel: [11, 15, 20, 25][h[26]! % 4]!,
  };
}
