import { describe, expect, it, vi } from "vitest";
import { type DropReason, TargetQueue } from "../../../sidecar/notify/snmp-queue.js";
import type { OutgoingNotification } from "../../../sidecar/notify/snmp-varbinds.js";
import { FakeSender, tick } from "./fake-sender.js";

function note(i: number): OutgoingNotification {
  return {
    mib: "ZIGBEE2MQTT-HA-MIB",
    name: "z2mhaNodeReachable",
    trapOid: `1.3.6.1.4.1.1.0.${i}`,
    varbinds: [],
  };
}

function harness(options: { capacity?: number; deadlineMs?: number; sender?: () => FakeSender } = {}) {
  const senders: FakeSender[] = [];
  const log = {
    sent: [] as string[],
    failed: [] as Array<[string, string]>,
    dropped: [] as Array<[string, DropReason]>,
    depth: [] as number[],
  };
  const queue = new TargetQueue({
    capacity: options.capacity ?? 10,
    deadlineMs: options.deadlineMs ?? 10_000,
    createSender: () => {
      const sender = options.sender?.() ?? new FakeSender();
      senders.push(sender);
      return sender;
    },
    events: {
      sent: (n) => log.sent.push(n.trapOid),
      failed: (n, e) => log.failed.push([n.trapOid, e.message]),
      dropped: (n, reason) => log.dropped.push([n.trapOid, reason]),
      depth: (d) => log.depth.push(d),
    },
  });
  const current = () => senders.at(-1) as FakeSender;
  return { queue, senders, log, current };
}

describe("TargetQueue", () => {
  it("sends one notification at a time, in order", async () => {
    const { queue, log, current } = harness();
    queue.push(note(1));
    queue.push(note(2));
    queue.push(note(3));
    // push() only queues; the send starts on a later turn of the event loop.
    expect(queue.busy).toBe(false);
    expect(queue.waiting).toBe(3);
    await tick();
    expect(current().pending.map((p) => p.notification.trapOid)).toEqual(["1.3.6.1.4.1.1.0.1"]);
    expect(queue.waiting).toBe(2);
    current().pending[0]?.finish();
    await tick();
    expect(current().pending.map((p) => p.notification.trapOid)).toEqual(["1.3.6.1.4.1.1.0.2"]);
    current().pending[0]?.finish();
    await tick();
    current().pending[0]?.finish();
    await tick();
    expect(log.sent).toEqual(["1.3.6.1.4.1.1.0.1", "1.3.6.1.4.1.1.0.2", "1.3.6.1.4.1.1.0.3"]);
    expect(queue.waiting).toBe(0);
    expect(queue.busy).toBe(false);
    expect(log.depth.at(-1)).toBe(0);
  });

  it("drops the oldest waiting notification when full, and counts it", async () => {
    const { queue, log, current } = harness({ capacity: 2 });
    queue.push(note(1));
    await tick();
    for (let i = 2; i <= 5; i++) queue.push(note(i));
    // 1 is in flight; 2 and 3 made room for 4 and 5.
    expect(current().pending.map((p) => p.notification.trapOid)).toEqual(["1.3.6.1.4.1.1.0.1"]);
    expect(log.dropped).toEqual([
      ["1.3.6.1.4.1.1.0.2", "queue_full"],
      ["1.3.6.1.4.1.1.0.3", "queue_full"],
    ]);
    expect(queue.waiting).toBe(2);
    expect(log.depth.at(-1)).toBe(2);
  });

  it("counts a failed send and rebuilds the sender for the next one", async () => {
    const { queue, log, senders, current } = harness();
    queue.push(note(1));
    queue.push(note(2));
    await tick();
    current().pending[0]?.finish(new Error("Request timed out"));
    expect(log.failed).toEqual([["1.3.6.1.4.1.1.0.1", "Request timed out"]]);
    expect(senders[0]?.closed).toBe(true);
    await tick();
    expect(senders).toHaveLength(2);
    current().pending[0]?.finish();
    expect(log.sent).toEqual(["1.3.6.1.4.1.1.0.2"]);
    expect(senders[1]?.closed).toBe(false);
  });

  it("gives up on a send that never answers, and ignores its late answer", async () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
    try {
      const { queue, log, senders } = harness({ deadlineMs: 30 });
      queue.push(note(1));
      queue.push(note(2));
      await tick();
      const first = senders[0]?.pending[0];
      vi.advanceTimersByTime(29);
      expect(log.failed).toEqual([]);
      vi.advanceTimersByTime(1);
      expect(log.failed).toEqual([["1.3.6.1.4.1.1.0.1", "no outcome within 30 ms"]]);
      await tick();
      expect(senders[1]?.pending.map((p) => p.notification.trapOid)).toEqual(["1.3.6.1.4.1.1.0.2"]);
      first?.finish();
      expect(log.sent).toEqual([]);
      senders[1]?.pending[0]?.finish();
      expect(log.sent).toEqual(["1.3.6.1.4.1.1.0.2"]);
      expect(log.failed).toHaveLength(1);
    } finally {
      vi.useRealTimers();
    }
  });

  it("turns a sender that throws into a counted failure", async () => {
    const { queue, log } = harness({
      sender: () => {
        throw new Error("bad target");
      },
    });
    expect(() => queue.push(note(1))).not.toThrow();
    await tick();
    expect(log.failed).toEqual([["1.3.6.1.4.1.1.0.1", "bad target"]]);
    expect(queue.busy).toBe(false);
  });

  it("drains: resolves once everything was sent", async () => {
    const { queue, log } = harness({ sender: () => new FakeSender(undefined, undefined, "ok") });
    queue.push(note(1));
    queue.push(note(2));
    queue.push(note(3));
    await queue.drain(5_000);
    expect(log.sent).toHaveLength(3);
    expect(queue.busy).toBe(false);
  });

  it("drain gives up at its deadline; close drops what waits and fails what is in flight", async () => {
    const { queue, log, current } = harness();
    queue.push(note(1));
    queue.push(note(2));
    await tick();
    await queue.drain(20);
    expect(log.sent).toEqual([]);
    queue.close();
    expect(log.dropped).toEqual([["1.3.6.1.4.1.1.0.2", "shutdown"]]);
    expect(log.failed).toEqual([["1.3.6.1.4.1.1.0.1", "notifier stopped before the send completed"]]);
    expect(current().closed).toBe(true);
    queue.push(note(3));
    expect(log.dropped.at(-1)).toEqual(["1.3.6.1.4.1.1.0.3", "shutdown"]);
  });
});
