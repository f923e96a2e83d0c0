import { writeFileSync } from "node:fs";
import { addNetns, inNetns } from "./namespaces.js";
import { bridgePortName, type HostId, netnsName, rootLinkName } from "./naming.js";
import { run, tryRun } from "./run.js";

/** Interface names inside the hosts. */
export const LAB_INTERFACE = "eth0";
export const CONTROLLER_LINK_LOCAL_INTERFACE = "ll0";
const BRIDGE = "br0";

export interface NetworkPlan {
  name: string;
  /** "10.a.b.0" */
  subnet: string;
  /** The third octet of the controller's link-local /30. */
  linkLocal: number;
  hosts: { id: HostId; address: string }[];
}

export function linkLocalAddresses(k: number): { root: string; controller: string } {
  return { root: `169.254.${k}.1`, controller: `169.254.${k}.2` };
}

/**
 * Builds the lab network: a bridge in a namespace of its own, one veth per host into it, and one
 * link-local /30 between the root namespace and the controller. Idempotent per part.
 * Nothing forwards, no host has a default route: lab packets cannot leave the machine.
 */
export async function buildNetwork(plan: NetworkPlan): Promise<void> {
  const bridgeNs = netnsName(plan.name, "bridge");
  await addNetns(bridgeNs);
  if ((await tryRun(["ip", "-n", bridgeNs, "link", "show", BRIDGE])).code !== 0) {
    await run([
      "ip",
      "-n",
      bridgeNs,
      "link",
      "add",
      BRIDGE,
      "type",
      "bridge",
      "stp_state",
      "0",
      "forward_delay",
      "0",
    ]);
  }
  await run(["ip", "-n", bridgeNs, "link", "set", BRIDGE, "up"]);

  for (const host of plan.hosts) {
    const hostNs = netnsName(plan.name, host.id);
    const port = bridgePortName(host.id);
    await addNetns(hostNs);
    if ((await tryRun(["ip", "-n", bridgeNs, "link", "show", port])).code !== 0) {
      await run([
        "ip",
        "-n",
        bridgeNs,
        "link",
        "add",
        port,
        "type",
        "veth",
        "peer",
        "name",
        LAB_INTERFACE,
        "netns",
        hostNs,
      ]);
    }
    await run(["ip", "-n", bridgeNs, "link", "set", port, "master", BRIDGE, "up"]);
    await run(["ip", "-n", hostNs, "addr", "replace", `${host.address}/24`, "dev", LAB_INTERFACE]);
    await run(["ip", "-n", hostNs, "link", "set", LAB_INTERFACE, "up"]);
  }

  const controllerNs = netnsName(plan.name, "controller");
  const rootLink = rootLinkName(plan.name);
  const ll = linkLocalAddresses(plan.linkLocal);
  if ((await tryRun(["ip", "link", "show", "dev", rootLink])).code !== 0) {
    await run([
      "ip",
      "link",
      "add",
      rootLink,
      "type",
      "veth",
      "peer",
      "name",
      CONTROLLER_LINK_LOCAL_INTERFACE,
      "netns",
      controllerNs,
    ]);
  }
  // The root namespace's end carries the /30 address and nothing else: no IPv6 link-local either.
  await run(["ip", "link", "set", "dev", rootLink, "addrgenmode", "none"]);
  writeFileSync(`/proc/sys/net/ipv6/conf/${rootLink}/disable_ipv6`, "1");
  await run(["ip", "addr", "replace", `${ll.root}/30`, "dev", rootLink]);
  await run(["ip", "link", "set", "dev", rootLink, "up"]);
  await run([
    "ip",
    "-n",
    controllerNs,
    "addr",
    "replace",
    `${ll.controller}/30`,
    "dev",
    CONTROLLER_LINK_LOCAL_INTERFACE,
  ]);
  await run(["ip", "-n", controllerNs, "link", "set", CONTROLLER_LINK_LOCAL_INTERFACE, "up"]);
}

/** Plugs or pulls a host's cable: its bridge port goes down, its own interface loses carrier. */
export async function setLink(name: string, host: HostId, up: boolean): Promise<void> {
  await run(["ip", "-n", netnsName(name, "bridge"), "link", "set", bridgePortName(host), up ? "up" : "down"]);
}

export async function linkIsUp(name: string, host: HostId): Promise<boolean> {
  const result = await run([
    "ip",
    "-j",
    "-n",
    netnsName(name, "bridge"),
    "link",
    "show",
    bridgePortName(host),
  ]);
  const [link] = JSON.parse(result.stdout) as { flags: string[] }[];
  return link?.flags.includes("UP") ?? false;
}

const NETEM_IN = "LAB-NETEM-IN";
const NETEM_OUT = "LAB-NETEM-OUT";
/** The NFQUEUE number the delay helper serves inside a node's network namespace. */
export const NETEM_QUEUE = 0;

export interface NetemSettings {
  /** Percent of packets dropped, each direction. */
  loss: number;
  /** Milliseconds added to each packet the node sends (0: none). */
  delay: number;
}

/**
 * Installs packet loss (both directions) and the hook for the delay helper (outgoing packets) on a
 * node's lab interface, replacing earlier settings. Rules live in chains of their own, so clearing
 * them leaves the node's firewall as it was.
 */
export async function applyNetem(name: string, host: HostId, settings: NetemSettings): Promise<void> {
  const ns = netnsName(name, host);
  await clearNetem(name, host);
  await inNetns(ns, ["iptables", "-w", "-N", NETEM_IN]);
  await inNetns(ns, ["iptables", "-w", "-N", NETEM_OUT]);
  if (settings.loss > 0) {
    const probability = (settings.loss / 100).toFixed(6);
    const random = ["-m", "statistic", "--mode", "random", "--probability", probability, "-j", "DROP"];
    await inNetns(ns, ["iptables", "-w", "-A", NETEM_IN, "-i", LAB_INTERFACE, ...random]);
    await inNetns(ns, ["iptables", "-w", "-A", NETEM_OUT, "-o", LAB_INTERFACE, ...random]);
  }
  if (settings.delay > 0) {
    await inNetns(ns, [
      "iptables",
      "-w",
      "-A",
      NETEM_OUT,
      "-o",
      LAB_INTERFACE,
      "-j",
      "NFQUEUE",
      "--queue-num",
      String(NETEM_QUEUE),
      "--queue-bypass",
    ]);
  }
  await inNetns(ns, ["iptables", "-w", "-I", "INPUT", "1", "-j", NETEM_IN]);
  await inNetns(ns, ["iptables", "-w", "-I", "OUTPUT", "1", "-j", NETEM_OUT]);
}

export async function clearNetem(name: string, host: HostId): Promise<void> {
  const ns = netnsName(name, host);
  const rules = await inNetns(ns, ["iptables", "-w", "-S"]);
  for (const [hook, chain] of [
    ["INPUT", NETEM_IN],
    ["OUTPUT", NETEM_OUT],
  ] as const) {
    if (rules.stdout.includes(`-A ${hook} -j ${chain}`)) {
      await inNetns(ns, ["iptables", "-w", "-D", hook, "-j", chain]);
    }
    if (rules.stdout.includes(`-N ${chain}`)) {
      await inNetns(ns, ["iptables", "-w", "-F", chain]);
      await inNetns(ns, ["iptables", "-w", "-X", chain]);
    }
  }
}
