import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { nodeStatus } from "../../../sidecar/api/schemas.js";
import type { ClusterContext } from "../../../sidecar/cluster/context.js";
import { Monitor } from "../../../sidecar/cluster/monitor.js";
import { parseConfig } from "../../../sidecar/config/load.js";
import { EventBus, type Stamped } from "../../../sidecar/notify/bus.js";
import { StateStore } from "../../../sidecar/store/state.js";
import { unreachableNodes } from "../../helpers/sidecar.js";

function world() {
  const dir = mkdtempSync(join(tmpdir(), "z2mha-monitor-"));
  const config = parseConfig(
    stringify({ state_dir: dir, mqtt: { url: "mqtt://127.0.0.1:1" }, nodes: unreachableNodes() }),
  );
  const bus = new EventBus();
  const events: Stamped[] = [];
  bus.subscribe((e) => events.push(e));
  const cx = {
    config,
    bus,
    state: new StateStore(dir),
    nodes: new Map(config.nodes.map((n) => [n.id, { id: n.id, config: n }])),
    watcher: { status: () => ({ broker_connected: true, state: "online", publishing_node: "node1" }) },
    snapshots: { latestData: () => undefined },
  } as unknown as ClusterContext;
  return { cx, events, monitor: new Monitor(cx) };
}

describe("monitor before the first probe", () => {
  it("a status asked for before any probe is valid on the wire: unknown, no checks", () => {
    const { monitor, events } = world();
    const status = monitor.refresh("node1");
    expect(status).toMatchObject({ id: "node1", health: "unknown", reachable: null, checks: [] });
    expect(nodeStatus.safeParse(status).success).toBe(true);
    expect(events.map((e) => e.type)).toEqual(["node.changed"]);
    monitor.refresh("node1");
    expect(events).toHaveLength(1);
  });
});

describe("an expedited probe", () => {
  it("runs at once instead of at the next interval, and after the running one when one runs", async () => {
    const { monitor } = world();
    const calls: string[] = [];
    let release: (() => void) | undefined;
    const fake = monitor as unknown as { probe: (id: string) => Promise<unknown> };
    fake.probe = async (id: string) => {
      calls.push(id);
      if (id === "node1" && !release) await new Promise<void>((r) => (release = r));
      return {};
    };
    const settle = () => new Promise((r) => setTimeout(r, 20));
    monitor.start();
    await settle();
    // node1's first probe hangs; node2's is done and its next is an interval (3 s) away.
    expect(calls.sort()).toEqual(["node1", "node2"]);
    monitor.expedite("node2");
    await settle();
    expect(calls.filter((c) => c === "node2")).toHaveLength(2);
    // Asked while its probe runs: once it ends, node1 is probed again at once.
    monitor.expedite("node1");
    await settle();
    expect(calls.filter((c) => c === "node1")).toHaveLength(1);
    release?.();
    await settle();
    expect(calls.filter((c) => c === "node1")).toHaveLength(2);
    monitor.stop();
  });
});
