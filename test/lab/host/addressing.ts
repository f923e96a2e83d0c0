import { candidateLinkLocal, candidateSubnet } from "./naming.js";
import { run } from "./run.js";

interface Cidr {
  base: number;
  bits: number;
  text: string;
}

function parseIpv4(text: string): number {
  const parts = text.split(".").map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) {
    throw new Error(`not an IPv4 address: ${text}`);
  }
  return ((parts[0]! << 24) | (parts[1]! << 16) | (parts[2]! << 8) | parts[3]!) >>> 0;
}

export function parseCidr(text: string): Cidr {
  const [address, bitsText] = text.split("/");
  const bits = bitsText === undefined ? 32 : Number(bitsText);
  const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
  return { base: (parseIpv4(address!) & mask) >>> 0, bits, text };
}

export function overlaps(a: Cidr, b: Cidr): boolean {
  const bits = Math.min(a.bits, b.bits);
  const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
  return (a.base & mask) >>> 0 === (b.base & mask) >>> 0;
}

/** Every IPv4 prefix the root namespace has an address in or a route to, the default route aside. */
async function rootPrefixes(): Promise<Cidr[]> {
  const addresses = JSON.parse((await run(["ip", "-j", "-4", "addr", "show"])).stdout) as {
    addr_info?: { local: string; prefixlen: number }[];
  }[];
  const routes = JSON.parse((await run(["ip", "-j", "-4", "route", "show", "table", "all"])).stdout) as {
    dst: string;
    type?: string;
  }[];
  const prefixes: Cidr[] = [];
  for (const link of addresses) {
    for (const info of link.addr_info ?? []) prefixes.push(parseCidr(`${info.local}/${info.prefixlen}`));
  }
  for (const route of routes) {
    if (route.dst === "default" || !/^\d+\.\d+\.\d+\.\d+(\/\d+)?$/.test(route.dst)) continue;
    if (route.type === "broadcast" || route.dst.startsWith("127.")) continue;
    prefixes.push(parseCidr(route.dst));
  }
  return prefixes;
}

export interface AddressPlan {
  subnet: string;
  linkLocal: number;
}

/**
 * Picks the instance's lab /24 and link-local /30: derived from the name (stable across runs),
 * moved on to the next candidate while one overlaps an address or route of the root namespace or
 * another instance's network.
 */
export async function planAddresses(name: string, others: AddressPlan[]): Promise<AddressPlan> {
  const taken = await rootPrefixes();
  const takenLinkLocal = new Set(others.map((o) => o.linkLocal));
  const otherSubnets = others.map((o) => parseCidr(`${o.subnet}/24`));
  let subnet: string | undefined;
  for (let attempt = 0; attempt < 64 && !subnet; attempt++) {
    const candidate = candidateSubnet(name, attempt);
    const cidr = parseCidr(`${candidate}/24`);
    if (![...taken, ...otherSubnets].some((prefix) => overlaps(prefix, cidr))) subnet = candidate;
  }
  let linkLocal: number | undefined;
  for (let attempt = 0; attempt < 64 && linkLocal === undefined; attempt++) {
    const k = candidateLinkLocal(name, attempt);
    const cidr = parseCidr(`169.254.${k}.0/30`);
    if (!takenLinkLocal.has(k) && !taken.some((prefix) => overlaps(prefix, cidr))) linkLocal = k;
  }
  if (!subnet || linkLocal === undefined) {
    throw new Error(
      `cannot find a free private /24 and link-local /30 for lab ${name}: the root namespace's addresses and routes overlap every candidate`,
    );
  }
  return { subnet, linkLocal };
}
