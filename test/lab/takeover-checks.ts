/**
 * What the takeover lab tests (takeover, failover, recovery) look at, the way a user would: which
 * node runs zigbee2mqtt by its service manager, what the broker says, what each dongle holds
 * (through the simulator's control socket, not through the sidecar), and the sidecar's records.
 */
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { expect } from "vitest";
import type { OperationRecord } from "../../sidecar/types.js";
import { type Nvram, runningNodes } from "./cluster-facts.js";
import type { BridgeSnapshot } from "./host/mqtt.js";
import { type SidecarApi, sleep, stepLine } from "./sidecar-api.js";
import { baseline, type SidecarHandle } from "./sidecar-harness.js";
import type { SimulatorStatus } from "./simulator/client.js";
import type { Lab } from "./world.js";

export { isCounterItem, type Nvram, nvramDifferences, runningNodes } from "./cluster-facts.js";

/** The network as zigbee2mqtt announces it in bridge/info. */
export interface Identity {
  ieee: string;
  pan_id: number;
  extended_pan_id: string;
  channel: number;
}

export function identityOf(bridge: BridgeSnapshot): Identity {
  const info = bridge.info;
  return {
    ieee: String(info?.coordinator?.ieee_address),
    pan_id: Number(info?.network?.pan_id),
    extended_pan_id: String(info?.network?.extended_pan_id),
    channel: Number(info?.network?.channel),
  };
}

/**
 * A dongle's status once no program holds its port (the frame counter of a started chip moves
 * while a host is connected; read it after the host let go).
 */
export async function dongleAtRest(lab: Lab, node: string, timeoutMs = 10_000): Promise<SimulatorStatus> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const status = await lab.simulator(node).status();
    if (!status.host_connected) return status;
    if (Date.now() > deadline) throw new Error(`a program still holds ${node}'s dongle`);
    await sleep(50);
  }
}

/**
 * A takeover test file's start: the lab's `baseline` (node1 forms a new network, the other dongles
 * blank), then every dongle's "highest counter ever used" restarts from now (node1 from the counter
 * of the network it just formed, the blank ones from 0), so that it means "on this network" and
 * not "in some earlier test file". Returns the network as node1's bridge/info announced it.
 */
export async function freshNetwork(lab: Lab): Promise<Identity> {
  await baseline(lab);
  for (const id of lab.info.nodeIds) await lab.simulator(id).resetMaxFrameCounter();
  return identityOf(await lab.bridge());
}

/** The network key a dongle holds (NWKKEY = sequence number ‖ key ‖ …), as lowercase hex. */
export function networkKeyOf(nvram: Nvram): string {
  return (nvram.LEGACY?.NWKKEY ?? "").slice(2, 34);
}

/** The NVRAM dump a switchover read from the old active, as the sidecar stored it. */
export function storedNvramDump(h: SidecarHandle, snapshotId: string): Nvram {
  const stateDir = join(dirname(h.configPath), "state");
  const file = join(stateDir, "snapshots", "nvram", `${snapshotId}.json`);
  return (JSON.parse(readFileSync(file, "utf8")) as { dump: Nvram }).dump;
}

/**
 * The cluster as a user sees it after a takeover settled: the sidecar names `node` active; exactly
 * that node's service runs zigbee2mqtt; the broker's retained bridge/state is online and
 * bridge/info comes from `node` (its frontend host) with the expected network identity.
 */
export async function expectActive(h: SidecarHandle, node: string, identity: Identity): Promise<void> {
  const { lab, api } = h;
  expect((await api.status()).active).toBe(node);
  expect(await runningNodes(lab)).toEqual([node]);
  const bridge = await lab.waitForBridge(
    (b) => b.state === "online" && b.info?.config?.frontend?.host === lab.node(node).address,
    { timeout: 30_000, what: `bridge/info from ${node}` },
  );
  expect(identityOf(bridge)).toEqual(identity);
}

/** The steps of an operation that ran, by name, in order, with their status. */
export function stepsOf(op: OperationRecord): string[] {
  return op.steps.map(stepLine);
}

/** After a takeover test file: node1 running zigbee2mqtt, the other nodes stopped, faults undone. */
export { leaveNode1Active } from "./policy-helpers.js";

type Kind = "switchover" | "failover" | "sync";

/**
 * Starts an operation as a user would, once the sidecar is free: it also syncs on its own (after
 * start-up, when zigbee2mqtt reports a change), and a request during such a sync is answered 409
 * by design. Waits for that sync and asks again; any other refusal is an error.
 */
export async function startWhenFree(
  api: SidecarApi,
  kind: Kind,
  body: Record<string, unknown> = {},
): Promise<OperationRecord> {
  for (let attempt = 1; ; attempt++) {
    const { status, body: answer } = await api.request<OperationRecord>("POST", `/api/v1/${kind}`, body);
    if (status < 300) return answer;
    const busy = await backgroundOperation(api, status, answer);
    if (!busy || attempt >= 5) throw new Error(`POST /api/v1/${kind}: ${status} ${JSON.stringify(answer)}`);
    await api.finish(busy);
  }
}

/** startWhenFree, then waits for the operation's end. */
export async function runWhenFree(
  api: SidecarApi,
  kind: Kind,
  body: Record<string, unknown> = {},
): Promise<OperationRecord> {
  return api.finish(await startWhenFree(api, kind, body));
}

/** The sidecar's own sync or check behind a 409, if that is what it was. */
export async function backgroundOperation(
  api: SidecarApi,
  status: number,
  answer: unknown,
): Promise<OperationRecord | undefined> {
  const id = (answer as { error?: { details?: { operation_id?: string } } } | undefined)?.error?.details
    ?.operation_id;
  if (status !== 409 || !id) return undefined;
  const running = await api.operation(id);
  const own = running.trigger !== "api" && (running.kind === "sync" || running.kind === "check");
  return own ? running : undefined;
}

const NV_WRITES = ["nvWrite", "osalNvWrite", "osalNvWriteExt", "osalNvItemInit", "nvDelete", "osalNvDelete"];

/** How many NV writes (and deletes) a dongle has received since its simulator started. */
export async function nvWriteCount(lab: Lab, node: string): Promise<number> {
  const { commands } = await lab.simulator(node).stats();
  return Object.entries(commands)
    .filter(([name]) => NV_WRITES.some((w) => name.endsWith(`.${w}`)))
    .reduce((n, [, count]) => n + count, 0);
}
