import { EventEmitter } from "node:events";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { ClusterContext } from "../../../sidecar/cluster/context.js";
import type { Monitor } from "../../../sidecar/cluster/monitor.js";
import { Scheduler } from "../../../sidecar/cluster/scheduler.js";
import { EventBus } from "../../../sidecar/notify/bus.js";
import type { NodeHealth, NodeStatus } from "../../../sidecar/types.js";

function world(maintenance = false) {
  const bus = new EventBus();
  const cx = {
    config: { sync: { interval: 3_600_000, debounce: 10_000 }, schedule: {} },
    state: { get: () => ({ active: "node1", automation: { maintenance }, last_sync: null }) },
    bus,
    runner: { running: undefined },
    watcher: new EventEmitter(),
  } as unknown as ClusterContext;
  const syncs: string[] = [];
  const scheduler = new Scheduler(cx, {} as Monitor, {
    sync: (_trigger, reason) => syncs.push(reason),
    switchover: () => {},
  });
  // The first sync after start-up: far off, out of the way.
  scheduler.start(3_600_000);
  const changed = (id: string, previous: NodeHealth, health: NodeHealth) =>
    bus.publish({
      type: "node.changed",
      node: { id, health, reason: "staged copy is not the latest snapshot" } as NodeStatus,
      previous,
    });
  return { scheduler, syncs, changed };
}

describe("scheduler: a standby back from out of reach", () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("is synced at once, from unreachable or from its fence; once per 5 minutes however often it flaps", () => {
    const { scheduler, syncs, changed } = world();
    changed("node2", "unreachable", "standby-not-ready");
    expect(syncs).toEqual([
      "node2 is back (unreachable before), not ready: staged copy is not the latest snapshot",
    ]);
    changed("node3", "fenced", "standby-not-ready");
    expect(syncs).toHaveLength(2);
    expect(syncs[1]).toMatch(/^node3 is back \(fenced before\)/);
    // node2 flaps: no sync per return.
    vi.advanceTimersByTime(60_000);
    changed("node2", "standby-not-ready", "unreachable");
    changed("node2", "unreachable", "standby-not-ready");
    expect(syncs).toHaveLength(2);
    vi.advanceTimersByTime(4 * 60_000);
    changed("node2", "unreachable", "standby-not-ready");
    expect(syncs).toHaveLength(3);
    scheduler.stop();
  });

  it("not for a node that comes back ready, or one that was merely not ready; not in maintenance mode", () => {
    const { scheduler, syncs, changed } = world();
    changed("node2", "unreachable", "standby-ready");
    changed("node2", "standby-ready", "standby-not-ready");
    changed("node2", "unknown", "standby-not-ready");
    expect(syncs).toEqual([]);
    scheduler.stop();
    const paused = world(true);
    paused.changed("node2", "unreachable", "standby-not-ready");
    expect(paused.syncs).toEqual([]);
    paused.scheduler.stop();
  });
});
