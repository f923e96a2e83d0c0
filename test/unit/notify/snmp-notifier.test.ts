import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import type { SnmpTargetConfig } from "../../../sidecar/config/schema.js";
import { createLogger } from "../../../sidecar/log.js";
import { createRegistry } from "../../../sidecar/metrics.js";
import { EventBus } from "../../../sidecar/notify/bus.js";
import { createSnmpNotifier, SnmpNotifier, targetLabel } from "../../../sidecar/notify/snmp.js";
import { deriveEngineId } from "../../../sidecar/notify/snmp-session.js";
import type { ClusterEvent } from "../../../sidecar/types.js";
import { snmpConfig } from "../../helpers/snmp-config.js";
import { FakeSender, tick } from "./fake-sender.js";

const finishedSwitchover: ClusterEvent = {
  type: "operation.finished",
  operation: {
    id: "op-1",
    kind: "switchover",
    status: "succeeded",
    mutating: true,
    started_at: "2026-11-26T10:00:00.000Z",
    duration_ms: 1_500,
    trigger: "api",
    params: { from: "node1", to: "node2" },
    steps: [],
  },
};

function setup(snmp: unknown, behaviour: "hold" | "ok" | Error = "hold") {
  const lines: string[] = [];
  const logger = createLogger(
    "debug",
    new Writable({
      write(chunk, _enc, done) {
        lines.push(String(chunk));
        done();
      },
    }),
  );
  const bus = new EventBus();
  const registry = createRegistry();
  const senders: FakeSender[] = [];
  const notifier = new SnmpNotifier({
    config: snmpConfig(snmp),
    clusterName: "home",
    bus,
    registry,
    logger,
    stopDeadlineMs: 200,
    createSender: (target: SnmpTargetConfig, engineId: string) => {
      const sender = new FakeSender(target, engineId, behaviour === "hold" ? undefined : behaviour);
      senders.push(sender);
      return sender;
    },
  });
  return { notifier, bus, registry, senders, lines };
}

const twoTargets = {
  targets: [
    { host: "127.0.0.1", port: 1162, community: "s3cret-community" },
    {
      host: "127.0.0.1",
      port: 1163,
      version: "3",
      inform: true,
      user: { name: "ops", auth_key: "auth-pass-phrase", priv_key: "priv-pass-phrase" },
    },
  ],
};

describe("SnmpNotifier", () => {
  it("queues each event's notification for every target without waiting for the network", async () => {
    const { notifier, bus, registry, senders } = setup(twoTargets);
    notifier.start();
    bus.publish(finishedSwitchover);
    // Publishing only queued: no session was even opened yet.
    expect(senders).toEqual([]);
    const depth = await registry.getSingleMetric("z2mha_snmp_queue_depth")?.get();
    expect(depth?.values.map((v) => [v.labels.target, v.value])).toEqual([
      ["127.0.0.1:1162", 1],
      ["127.0.0.1:1163", 1],
    ]);
    await tick();
    expect(senders.map((s) => s.pending.length)).toEqual([1, 1]);
    const [v2, v3] = senders;
    expect(v2?.sent[0]?.trapOid).toBe("1.3.6.1.4.1.32473.8485.0.2");
    expect(v3?.sent[0]?.name).toBe("z2mhaSwitchoverSucceeded");
    expect(v2?.target?.port).toBe(1162);
    expect(v3?.target?.inform).toBe(true);
    await notifier.stop();
  });

  it("sends the prototype's trap also, or only, when asked", async () => {
    const also = setup({ ...twoTargets, prototype_compat: "also" }, "ok");
    also.notifier.start();
    also.bus.publish(finishedSwitchover);
    await also.notifier.stop();
    expect(also.senders[0]?.sent.map((n) => n.trapOid)).toEqual([
      "1.3.6.1.4.1.32473.8485.0.2",
      "1.3.6.1.4.1.8072.2.1.1",
    ]);

    const only = setup({ ...twoTargets, prototype_compat: "only" }, "ok");
    only.notifier.start();
    only.bus.publish(finishedSwitchover);
    await only.notifier.stop();
    expect(only.senders.flatMap((s) => s.sent.map((n) => n.mib))).toEqual([
      "CUSTOM-SCRIPT-MIB",
      "CUSTOM-SCRIPT-MIB",
    ]);
  });

  it("computes every OID from the configured enterprise_oid", async () => {
    const { notifier, bus, senders } = setup({ ...twoTargets, enterprise_oid: "1.3.6.1.4.1.424242.1" });
    notifier.start();
    bus.publish(finishedSwitchover);
    await tick();
    expect(senders[0]?.sent[0]?.trapOid).toBe("1.3.6.1.4.1.424242.1.0.2");
    expect(senders[0]?.sent[0]?.varbinds.every((v) => v.oid.startsWith("1.3.6.1.4.1.424242.1.1."))).toBe(
      true,
    );
    await notifier.stop();
  });

  it("counts sent, failed, dropped and queue depth per target in the registry", async () => {
    const { notifier, bus, registry, senders } = setup({ ...twoTargets, queue_size: 1 });
    notifier.start();
    bus.publish(finishedSwitchover);
    await tick();
    bus.publish(finishedSwitchover);
    bus.publish(finishedSwitchover); // one in flight, one waiting: the second is dropped
    senders[0]?.pending[0]?.finish();
    senders[1]?.pending[0]?.finish(new Error("Request timed out"));
    const text = await registry.metrics();
    expect(text).toContain(
      'z2mha_snmp_notifications_sent_total{target="127.0.0.1:1162",mib="ZIGBEE2MQTT-HA-MIB",notification="z2mhaSwitchoverSucceeded",service="zigbee2mqtt-ha"} 1',
    );
    expect(text).toContain(
      'z2mha_snmp_notifications_failed_total{target="127.0.0.1:1163",mib="ZIGBEE2MQTT-HA-MIB",notification="z2mhaSwitchoverSucceeded",service="zigbee2mqtt-ha"} 1',
    );
    expect(text).toContain(
      'z2mha_snmp_notifications_dropped_total{target="127.0.0.1:1162",reason="queue_full",service="zigbee2mqtt-ha"} 1',
    );
    expect(text).toContain('z2mha_snmp_queue_depth{target="127.0.0.1:1163",service="zigbee2mqtt-ha"} 1');
    await notifier.stop();
  });

  it("keeps publishing safe when sending is impossible, and logs no secrets", async () => {
    const lines: string[] = [];
    const bus = new EventBus(10, (error) => lines.push(`listener threw: ${error}`));
    const registry = createRegistry();
    const notifier = new SnmpNotifier({
      config: snmpConfig(twoTargets),
      clusterName: "home",
      bus,
      registry,
      logger: createLogger(
        "debug",
        new Writable({
          write(chunk, _enc, done) {
            lines.push(String(chunk));
            done();
          },
        }),
      ),
      createSender: () => {
        throw new Error("cannot open socket");
      },
    });
    notifier.start();
    expect(() => bus.publish(finishedSwitchover)).not.toThrow();
    await tick();
    expect(lines.some((l) => l.startsWith("listener threw"))).toBe(false);
    expect(await registry.metrics()).toMatch(
      /z2mha_snmp_notifications_failed_total\{target="127\.0\.0\.1:1162".*\} 1/,
    );
    const log = lines.join("");
    expect(log).toContain("cannot open socket");
    expect(log).not.toContain("s3cret-community");
    expect(log).not.toContain("pass-phrase");
    await notifier.stop();
  });

  it("warns once when a target starts failing and tells when it recovers", async () => {
    const { notifier, bus, senders, lines } = setup(
      { targets: [{ host: "127.0.0.1", port: 1162, name: "nms" }] },
      "hold",
    );
    notifier.start();
    for (let i = 0; i < 3; i++) bus.publish(finishedSwitchover);
    await tick();
    for (let i = 0; i < 2; i++) {
      senders.at(-1)?.pending[0]?.finish(new Error("send failed"));
      await tick();
    }
    senders.at(-1)?.pending[0]?.finish();
    const entries = lines.map((l) => JSON.parse(l) as { level: number; msg: string; target?: string });
    expect(entries.filter((e) => e.msg === "SNMP notification failed").map((e) => e.level)).toEqual([40, 20]);
    expect(entries.some((e) => e.msg === "SNMP target reachable again" && e.target === "nms")).toBe(true);
    await notifier.stop();
  });

  it("uses the configured v3 engine id, else one derived from root and cluster name, stable", async () => {
    const configured = setup({
      targets: [
        {
          host: "127.0.0.1",
          version: "3",
          user: {
            name: "ops",
            auth_key: "auth-pass-phrase",
            priv_key: "priv-pass-phrase",
            engine_id: "0x8000000001020304AB",
          },
        },
      ],
    });
    expect(Object.values(configured.notifier.engineIds)).toEqual(["8000000001020304ab"]);

    const derived = setup(twoTargets).notifier.engineIds;
    expect(derived).toEqual({ "127.0.0.1:1163": deriveEngineId("1.3.6.1.4.1.32473.8485", "home") });
    const id = deriveEngineId("1.3.6.1.4.1.32473.8485", "home");
    expect(id).toMatch(/^80007ed905[0-9a-f]{24}$/); // 0x80000000 | 32473, format 5, 12 octets
    expect(deriveEngineId("1.3.6.1.4.1.32473.8485", "home")).toBe(id);
    expect(deriveEngineId("1.3.6.1.4.1.32473.8485", "garden")).not.toBe(id);
  });

  it("stop() lets queued notifications go out, then closes the senders and stops listening", async () => {
    const { notifier, bus, senders } = setup(twoTargets, "ok");
    notifier.start();
    bus.publish(finishedSwitchover);
    bus.publish(finishedSwitchover);
    await notifier.stop();
    expect(senders.flatMap((s) => s.sent)).toHaveLength(4);
    expect(senders.every((s) => s.closed)).toBe(true);
    bus.publish(finishedSwitchover);
    expect(senders.flatMap((s) => s.sent)).toHaveLength(4);
  });

  it("createSnmpNotifier gives nothing without an snmp section", () => {
    const deps = {
      clusterName: "home",
      bus: new EventBus(),
      registry: createRegistry(),
      logger: createLogger("silent" as "info"),
    };
    expect(createSnmpNotifier(undefined, deps)).toBeUndefined();
    expect(createSnmpNotifier(snmpConfig(twoTargets), deps)?.targets).toEqual([
      "127.0.0.1:1162",
      "127.0.0.1:1163",
    ]);
  });
});

describe("targetLabel", () => {
  it("is the name, else host:port, with brackets around an IPv6 address", () => {
    const [a, b, c] = snmpConfig({
      targets: [
        { host: "nms.lan" },
        { host: "::1", port: 1162 },
        { host: "nms.lan", name: "nms", inform: true },
      ],
    }).targets;
    expect([a, b, c].map((t) => targetLabel(t as SnmpTargetConfig))).toEqual([
      "nms.lan:162",
      "[::1]:1162",
      "nms",
    ]);
  });
});
