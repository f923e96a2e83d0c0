/**
 * Lab tests of the sidecar share one lab instance (global-setup.ts). This puts the lab's cluster
 * in a known state before a test file — no faults, every dongle blank, node1 running zigbee2mqtt
 * on a freshly formed network, the other nodes stopped — and starts the real sidecar (dist/cli.js) in the
 * controller with a config of the test's own, talking to it over its REST API.
 */
import { inject } from "vitest";
import { FAULTS } from "./host/faults.js";
import { SidecarApi } from "./sidecar-api.js";
import { type HostId, Lab, type RunningSidecar } from "./world.js";

export * from "./sidecar-api.js";

export function sharedLab(): Promise<Lab> {
  return Lab.attach(inject("labName"));
}

/**
 * The starting point of every sidecar test file: no faults; node1 runs zigbee2mqtt, online, on a
 * network it has just formed; every other node stopped with a blank dongle; nothing staged anywhere.
 */
export async function baseline(lab: Lab): Promise<void> {
  const status = await lab.status();
  for (const fault of status.faults) {
    const undo = FAULTS[fault.kind as keyof typeof FAULTS]?.undo;
    // netem and tool-fault are undone by themselves with --clear.
    if (undo === `${fault.kind} --clear`) await lab.fault(fault.kind, fault.host as HostId, { clear: true });
    else if (undo) await lab.fault(undo, fault.host as HostId);
  }
  // Every node as `up` left it: zigbee2mqtt stopped, blank dongle, only the lab's configuration.yaml,
  // nothing staged. Then node1 forms the lab's network afresh.
  for (const id of lab.info.nodeIds) {
    await lab.resetNode(id);
    await lab.exec(id as HostId, ["rm", "-rf", lab.node(id).stagingDir], { user: "zigbee" });
  }
  await lab.service("node1", "zap");
  await lab.service("node1", "start");
  await lab.waitForZigbee2mqtt("node1");
}

export interface SidecarHandle {
  lab: Lab;
  sidecar: RunningSidecar;
  api: SidecarApi;
  configPath: string;
  stop(): Promise<void>;
}

/**
 * Starts the real sidecar in the controller with the lab's generated config plus `overrides`
 * (deep-merged; automatic failover off unless the test turns it on) and waits until it has probed
 * every node and adopted node1 as active.
 */
export async function startSidecar(
  lab: Lab,
  overrides: Record<string, unknown> = {},
): Promise<SidecarHandle> {
  const configPath = lab.sidecarConfig({
    // Arming a standby (a reset, a write and a read back of its dongle after a sync) is the
    // product's default, on in the takeover tests (failover, monitoring, takeover); elsewhere it
    // would only add its ~5 s per standby and network to every start-up sync.
    failover: { automatic: false, arm_standby: false },
    sync: { interval: "1h" },
    monitor: { probe_interval: "1s", failures: 3 },
    ...overrides,
  });
  // Whole seconds: the journal's timestamps may be rounded down.
  const startedAt = Math.floor(Date.now() / 1000) * 1000;
  const sidecar = await lab.startSidecar(configPath);
  const api = new SidecarApi(sidecar.url, sidecar.token);
  try {
    await api.waitForStatus(
      "the sidecar to adopt the running node and probe every node",
      (s) => s.active !== null && s.nodes.every((n) => n.health !== "unknown"),
      60_000,
    );
    // The sidecar syncs at once when it knows the active node (it is not protected before).
    // Tests start from a settled controller: that first sync ended, nothing else running.
    await api.waitFor(
      "the first sync after start-up to end",
      async () => {
        if ((await api.status()).running_operation) return undefined;
        const syncs = await api.operations("sync");
        return syncs.some((op) => Date.parse(op.started_at) >= startedAt && op.status !== "running");
      },
      180_000,
    );
  } catch (error) {
    // Never leave it running: it would hold the port for every later test file.
    await sidecar.stop();
    throw new Error(`${(error as Error).message}\n${sidecar.output().slice(-3000)}`);
  }
  return {
    lab,
    sidecar,
    api,
    configPath,
    stop: async () => {
      await sidecar.stop();
    },
  };
}
