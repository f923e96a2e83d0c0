/**
 * What the soak and chaos runs (npm run soak, npm run chaos) check after every takeover and
 * all the time in between, the way the lab tests do but over hours: one coordinator on the air at
 * most, the network frame counter never lower, the new active's NVRAM equal to the old one's
 * (counters aside), nothing lost from the data dir. And the report they write into
 * docs/reliability.md, each into its own section.
 */
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { join } from "node:path";
import type { OperationRecord } from "../../sidecar/types.js";
import { type Nvram, nvramDifferences, runningNodes } from "../lab/cluster-facts.js";
import type { SidecarApi } from "../lab/sidecar-api.js";
import { type HostId, type Lab, REPO } from "../lab/world.js";

export const log = (line: string) =>
  process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${line}\n`);

export function machine(): string {
  const cpu = cpus()[0]?.model ?? "unknown CPU";
  const kernel = execFileSync("uname", ["-r"]).toString().trim();
  const os = execFileSync("sh", ["-c", ". /etc/os-release && echo $PRETTY_NAME"]).toString().trim();
  return `${os}, kernel ${kernel}, ${cpus().length} × ${cpu}, ${Math.round(totalmem() / 2 ** 30)} GiB RAM, Node ${process.version}`;
}

/** A violation of what must always hold, with when and what was seen. */
export interface Violation {
  at: string;
  kind: "two coordinators" | "counter lower" | "nvram differs" | "data lost" | "did not settle";
  detail: string;
}

/** A dongle whose firmware runs a network, and which network. */
export interface OnAir {
  node: string;
  pan_id: number;
  extended_pan_id: string | null;
}

/**
 * Samples every dongle four times a second: a dongle is on the air when its firmware runs a
 * network (started, with a PAN). Two running the same network (extended PAN, or PAN ID) at once
 * is a split network. A dongle running another network beside it is not: zigpy-znp's
 * network_restore forms a throwaway network with random settings (its way to bring the NV into a
 * known state) before it writes ours, as when a standby is armed; those samples are counted apart.
 */
export class AirSampler {
  samples = 0;
  /** Samples with another network on the air beside one of ours (not a violation). */
  otherNetworkSamples = 0;
  readonly violations: Violation[] = [];
  #timer: NodeJS.Timeout | undefined;
  #busy = false;

  constructor(private readonly lab: Lab) {}

  start(): void {
    this.#timer = setInterval(() => void this.#sample(), 250);
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  async onAir(): Promise<string[]> {
    return (await this.networksOnAir()).map((n) => n.node);
  }

  async networksOnAir(): Promise<OnAir[]> {
    const on: OnAir[] = [];
    for (const id of this.lab.info.nodeIds) {
      const status = await this.lab
        .simulator(id)
        .status()
        .catch(() => undefined);
      if (status?.state === "started" && status.pan_id !== null && !status.unplugged)
        on.push({ node: id, pan_id: status.pan_id, extended_pan_id: status.extended_pan_id });
    }
    return on;
  }

  async #sample(): Promise<void> {
    if (this.#busy) return;
    this.#busy = true;
    try {
      const on = await this.networksOnAir();
      this.samples++;
      const split = sameNetwork(on);
      if (split.length > 1)
        this.violations.push({
          at: new Date().toISOString(),
          kind: "two coordinators",
          detail: `${split.map((n) => n.node).join(" and ")} (PAN ${split[0]?.pan_id}, extended PAN ${split[0]?.extended_pan_id})`,
        });
      else if (on.length > 1) this.otherNetworkSamples++;
    } finally {
      this.#busy = false;
    }
  }
}

/** The largest group of dongles on the air that run one network (same extended PAN or PAN ID). */
export function sameNetwork(on: OnAir[]): OnAir[] {
  let largest: OnAir[] = [];
  for (const a of on) {
    const group = on.filter(
      (b) => b.pan_id === a.pan_id || (a.extended_pan_id !== null && b.extended_pan_id === a.extended_pan_id),
    );
    if (group.length > largest.length) largest = group;
  }
  return largest;
}

/**
 * The highest network frame counter any dongle has ever used on the air, as the simulators count
 * it. Not the counter a stopped dongle holds in its NV: an armed standby holds one far ahead that
 * nothing sent yet, and it resumes exactly there.
 */
export async function highestCounter(lab: Lab): Promise<number> {
  let max = 0;
  for (const id of lab.info.nodeIds)
    max = Math.max(max, (await lab.simulator(id).status()).max_nwk_frame_counter);
  return max;
}

/**
 * A file of the user's in the active's data dir, written before a takeover: it must arrive on the
 * new active byte for byte. zigbee2mqtt never touches it, so any difference is the product's.
 */
export async function writeMarker(
  lab: Lab,
  node: HostId,
  n: number,
): Promise<{ path: string; content: string }> {
  const path = `soak-marker-${n}.txt`;
  const content = `marker ${n} written on ${node} at ${new Date().toISOString()}\n`;
  await lab.writeFile(node, `${lab.node(node).dataDir}/${path}`, content, { user: "zigbee" });
  return { path, content };
}

/** After a successful takeover from `from` to `to`: the invariants that concern the two nodes. */
export async function checkTakeover(
  lab: Lab,
  op: OperationRecord,
  from: HostId,
  to: HostId,
  counterBefore: number,
  markers: { path: string; content: string }[],
  stateDir: string,
): Promise<Violation[]> {
  const at = new Date().toISOString();
  const found: Violation[] = [];
  const next = await lab.simulator(to).status();
  if (next.nwk_frame_counter <= counterBefore)
    found.push({
      at,
      kind: "counter lower",
      detail: `${op.id}: ${to} resumed at ${next.nwk_frame_counter}, the network had reached ${counterBefore}`,
    });
  const snapshot = op.result?.nvram_snapshot as string | undefined;
  if (snapshot) {
    const dump = (
      JSON.parse(readFileSync(join(stateDir, "snapshots", "nvram", `${snapshot}.json`), "utf8")) as {
        dump: Nvram;
      }
    ).dump;
    const differences = nvramDifferences(dump, (await lab.simulator(to).nvram()) as Nvram);
    if (differences.length > 0)
      found.push({
        at,
        kind: "nvram differs",
        detail: `${op.id}: ${to} differs in ${differences.slice(0, 5).join(", ")}`,
      });
  }
  for (const marker of markers) {
    const content = await lab.readFile(to, `${lab.node(to).dataDir}/${marker.path}`).catch(() => undefined);
    if (content !== marker.content)
      found.push({
        at,
        kind: "data lost",
        detail: `${op.id}: ${marker.path} ${content === undefined ? "missing" : "changed"} on ${to} (from ${from})`,
      });
  }
  return found;
}

/**
 * Waits until the cluster is at rest: no operation running, the active healthy and online, and
 * exactly one node running zigbee2mqtt. Returns the active, or undefined when it does not settle.
 */
export async function settle(api: SidecarApi, lab: Lab, timeoutMs = 240_000): Promise<HostId | undefined> {
  try {
    const status = await api.waitForStatus(
      "the cluster at rest",
      (s) =>
        s.running_operation === null &&
        s.active !== null &&
        s.bridge.state === "online" &&
        s.nodes.some((n) => n.id === s.active && n.health === "active-healthy") &&
        s.nodes.filter((n) => n.zigbee2mqtt_running).length === 1,
      timeoutMs,
    );
    // And as the nodes' own service managers see it, not only as the sidecar does.
    const running = await runningNodes(lab);
    return running.length === 1 && running[0] === status.active ? (status.active as HostId) : undefined;
  } catch {
    return undefined;
  }
}

/** Replaces (or appends) the section of docs/reliability.md that starts with `heading`. */
export function writeSection(heading: string, body: string): void {
  const file = join(REPO, "docs", "reliability.md");
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch {
    text = "# Reliability: soak and chaos runs\n";
  }
  const start = text.indexOf(`\n${heading}\n`);
  const section = `\n${heading}\n\n${body.trim()}\n`;
  if (start < 0) text = `${text.trimEnd()}\n${section}`;
  else {
    const rest = text.indexOf("\n## ", start + heading.length + 2);
    text = text.slice(0, start) + section + (rest < 0 ? "" : text.slice(rest));
  }
  writeFileSync(file, text);
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

export function countBy<T>(items: T[], key: (item: T) => string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const item of items) out[key(item)] = (out[key(item)] ?? 0) + 1;
  return out;
}
