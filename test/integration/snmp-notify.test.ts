import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "../../sidecar/log.js";
import { createRegistry, type Registry } from "../../sidecar/metrics.js";
import { EventBus } from "../../sidecar/notify/bus.js";
import { SnmpNotifier } from "../../sidecar/notify/snmp.js";
import { DEFAULT_ENTERPRISE_OID } from "../../sidecar/notify/snmp-mib.js";
import { deriveEngineId } from "../../sidecar/notify/snmp-session.js";
import { snmpConfig } from "../helpers/snmp-config.js";
import { baseMibDir, FIXTURE_MIBS_DIR, MIBS_DIR, REPO } from "../helpers/snmp-mibs.js";
import { EVERY_NOTIFICATION, SWITCHOVER_SUCCEEDED } from "../helpers/snmp-scenario.js";
import {
  freeUdpPort,
  type ReceivedTrap,
  type Snmptrapd,
  startSnmptrapd,
  varbindValue,
} from "../helpers/snmptrapd.js";

const COMMUNITY = "z2m-test-community";
const AUTH = "auth-pass-phrase-1";
const PRIV = "priv-pass-phrase-1";
const CONFIGURED_ENGINE = "8000e4ae05000102030405060708";
/** Clusters whose v3 traps the receiver knows the derived engine id of. */
const V3_CLUSTER = "v3-trap-cluster";

/** The value of one sample in Prometheus text, 0 when absent. */
function metric(text: string, name: string, labels: Record<string, string>): number {
  for (const line of text.split("\n")) {
    if (!line.startsWith(`${name}{`)) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) {
      return Number(line.slice(line.lastIndexOf(" ") + 1));
    }
  }
  return 0;
}

function ofCluster(cluster: string) {
  return (trap: ReceivedTrap) =>
    varbindValue(trap, "z2mhaClusterName.0") === cluster ||
    varbindValue(trap, "scriptHost.0") === `"${cluster}"`;
}

interface Harness {
  notifier: SnmpNotifier;
  bus: EventBus;
  registry: Registry;
  log: string[];
}

function notifierFor(clusterName: string, snmp: unknown): Harness {
  const log: string[] = [];
  const bus = new EventBus();
  const registry = createRegistry();
  const notifier = new SnmpNotifier({
    config: snmpConfig(snmp),
    clusterName,
    bus,
    registry,
    logger: createLogger(
      "debug",
      new Writable({
        write(chunk, _enc, done) {
          log.push(String(chunk));
          done();
        },
      }),
    ),
  });
  notifier.start();
  return { notifier, bus, registry, log };
}

let trapd: Snmptrapd;

beforeAll(async () => {
  trapd = await startSnmptrapd({
    mibDirs: [MIBS_DIR, FIXTURE_MIBS_DIR],
    communities: [COMMUNITY],
    users: [
      // v3 traps: the sender's engine is authoritative, so each sending engine id needs its user.
      {
        name: "z2mha",
        authKey: AUTH,
        privKey: PRIV,
        engineId: deriveEngineId(DEFAULT_ENTERPRISE_OID, V3_CLUSTER),
      },
      { name: "z2mha", authKey: AUTH, privKey: PRIV, engineId: CONFIGURED_ENGINE },
      // v3 informs: keys localized to snmptrapd's own engine, which the sender discovers.
      { name: "z2mha", authKey: AUTH, privKey: PRIV },
    ],
  });
  expect(trapd.stderr).toBe("");
});

afterAll(async () => {
  await trapd?.stop();
});

const v2cTarget = (extra: Record<string, unknown> = {}) => ({
  host: "127.0.0.1",
  port: trapd.port,
  community: COMMUNITY,
  ...extra,
});
const v3Target = (extra: Record<string, unknown> = {}, user: Record<string, unknown> = {}) => ({
  host: "127.0.0.1",
  port: trapd.port,
  version: "3",
  user: { name: "z2mha", auth_key: AUTH, priv_key: PRIV, ...user },
  ...extra,
});

async function expectEveryNotification(cluster: string, expectedVersion: ReceivedTrap["version"]) {
  const expected = EVERY_NOTIFICATION.flatMap((step) => (step.expect ? [step.expect] : []));
  const traps = (
    await trapd.waitFor(
      (all) => all.filter(ofCluster(cluster)).length >= expected.length,
      15_000,
      `${expected.length} notifications of ${cluster}`,
    )
  ).filter(ofCluster(cluster));
  expect(traps.map((t) => t.trapOid)).toEqual(expected.map((e) => `ZIGBEE2MQTT-HA-MIB::${e.trap}`));
  traps.forEach((trap, i) => {
    const want = expected[i];
    expect(trap.version).toBe(expectedVersion);
    expect(trap.varbinds[0]?.name).toMatch(/sysUpTime/);
    expect(trap.varbinds[1]?.name).toBe("SNMPv2-MIB::snmpTrapOID.0");
    expect(varbindValue(trap, "z2mhaClusterName.0")).toBe(cluster);
    for (const [name, value] of Object.entries(want?.varbinds ?? {})) {
      expect({ trap: want?.trap, name, value: varbindValue(trap, name) }).toEqual({
        trap: want?.trap,
        name,
        value,
      });
    }
  });
  return traps;
}

describe("SNMP notifications reach a real snmptrapd, decoded with ZIGBEE2MQTT-HA-MIB", () => {
  it("v2c traps: every notification kind, in order, with typed varbinds", async () => {
    const h = notifierFor("v2c-trap-cluster", { targets: [v2cTarget()] });
    for (const step of EVERY_NOTIFICATION) h.bus.publish(step.event);
    const traps = await expectEveryNotification("v2c-trap-cluster", "2c");
    expect(traps[0]?.security).toBe(COMMUNITY);
    const succeeded = traps[1] as ReceivedTrap;
    expect(succeeded.varbinds.map((v) => `${v.name} = ${v.type}`)).toEqual([
      "SNMPv2-MIB::sysUpTime.0 = Timeticks",
      "SNMPv2-MIB::snmpTrapOID.0 = OID",
      "ZIGBEE2MQTT-HA-MIB::z2mhaClusterName.0 = STRING",
      "ZIGBEE2MQTT-HA-MIB::z2mhaOperationId.0 = STRING",
      "ZIGBEE2MQTT-HA-MIB::z2mhaPreviousActiveNode.0 = STRING",
      "ZIGBEE2MQTT-HA-MIB::z2mhaNewActiveNode.0 = STRING",
      "ZIGBEE2MQTT-HA-MIB::z2mhaOperationOutcome.0 = INTEGER",
      "ZIGBEE2MQTT-HA-MIB::z2mhaOperationDuration.0 = Gauge32",
      "ZIGBEE2MQTT-HA-MIB::z2mhaMessage.0 = STRING",
    ]);
    await h.notifier.stop();
    const text = await h.registry.metrics();
    expect(
      metric(text, "z2mha_snmp_notifications_sent_total", { notification: "z2mhaNodeUnreachable" }),
    ).toBe(1);
  });

  it("v2c informs: every notification kind acknowledged and counted as sent, none failed", async () => {
    const h = notifierFor("v2c-inform-cluster", { targets: [v2cTarget({ inform: true })] });
    for (const step of EVERY_NOTIFICATION) h.bus.publish(step.event);
    await expectEveryNotification("v2c-inform-cluster", "2c");
    await h.notifier.stop();
    const text = await h.registry.metrics();
    const target = `127.0.0.1:${trapd.port}`;
    const sent = EVERY_NOTIFICATION.filter((s) => s.expect).length;
    expect(
      text
        .split("\n")
        .filter(
          (l) => l.startsWith("z2mha_snmp_notifications_sent_total{") && l.includes(`target="${target}"`),
        )
        .reduce((sum, l) => sum + Number(l.slice(l.lastIndexOf(" ") + 1)), 0),
    ).toBe(sent);
    expect(text).not.toMatch(/^z2mha_snmp_notifications_failed_total\{/m);
  });

  it("SNMPv3 authPriv traps with the derived engine id: every notification kind", async () => {
    const h = notifierFor(V3_CLUSTER, { targets: [v3Target()] });
    for (const step of EVERY_NOTIFICATION) h.bus.publish(step.event);
    const traps = await expectEveryNotification(V3_CLUSTER, "3");
    expect(traps[0]?.security).toBe("z2mha");
    await h.notifier.stop();
  });

  it("SNMPv3 authPriv traps with a configured engine id", async () => {
    const h = notifierFor("v3-configured-engine", {
      targets: [v3Target({}, { engine_id: CONFIGURED_ENGINE, auth_protocol: "sha", priv_protocol: "aes" })],
    });
    h.bus.publish(SWITCHOVER_SUCCEEDED);
    const traps = await trapd.waitFor((all) => all.some(ofCluster("v3-configured-engine")));
    const trap = traps.find(ofCluster("v3-configured-engine"));
    expect(trap?.version).toBe("3");
    expect(trap?.trapOid).toBe("ZIGBEE2MQTT-HA-MIB::z2mhaSwitchoverSucceeded");
    await h.notifier.stop();
  });

  it("SNMPv3 authPriv informs: the receiver's engine is discovered and every inform acknowledged", async () => {
    const h = notifierFor("v3-inform-cluster", { targets: [v3Target({ inform: true })] });
    for (const step of EVERY_NOTIFICATION) h.bus.publish(step.event);
    await expectEveryNotification("v3-inform-cluster", "3");
    await h.notifier.stop();
    const text = await h.registry.metrics();
    expect(
      metric(text, "z2mha_snmp_notifications_sent_total", { notification: "z2mhaAutomationResumed" }),
    ).toBe(1);
    expect(text).not.toMatch(/^z2mha_snmp_notifications_failed_total\{/m);
  });

  it("a wrong v3 key is counted as failed for informs, not thrown", async () => {
    const h = notifierFor("v3-bad-key", {
      targets: [v3Target({ inform: true, timeout: "300ms", retries: 0 }, { auth_key: "not-the-key" })],
    });
    expect(() => h.bus.publish(SWITCHOVER_SUCCEEDED)).not.toThrow();
    await expect
      .poll(async () => metric(await h.registry.metrics(), "z2mha_snmp_notifications_failed_total", {}), {
        timeout: 10_000,
      })
      .toBe(1);
    await h.notifier.stop();
    expect(trapd.traps().some(ofCluster("v3-bad-key"))).toBe(false);
  });
});

describe("the prototype's CUSTOM-SCRIPT-MIB trap", () => {
  it("prototype_compat: also sends both, the old one decoded by the prototype's MIB with its four strings", async () => {
    const h = notifierFor("compat-also", { targets: [v2cTarget()], prototype_compat: "also" });
    h.bus.publish(EVERY_NOTIFICATION[4]?.event as never); // a rolled-back switchover
    const traps = (await trapd.waitFor((all) => all.filter(ofCluster("compat-also")).length >= 2)).filter(
      ofCluster("compat-also"),
    );
    expect(traps.map((t) => t.trapOid)).toEqual([
      "ZIGBEE2MQTT-HA-MIB::z2mhaSwitchoverFailed",
      "CUSTOM-SCRIPT-MIB::netSnmpScriptResEntry",
    ]);
    const old = traps[1] as ReceivedTrap;
    expect(old.version).toBe("2c");
    expect(old.varbinds.slice(2).map((v) => [v.name, v.type, v.value])).toEqual([
      ["CUSTOM-SCRIPT-MIB::scriptName.0", "STRING", '"z2m-ha switchover"'],
      ["CUSTOM-SCRIPT-MIB::scriptHost.0", "STRING", '"compat-also"'],
      [
        "CUSTOM-SCRIPT-MIB::scriptMessage.0",
        "STRING",
        '"switchover from node2 to node1 failed at step nvram-write: nvram_write exited with 1; rolled back, node2 is active again"',
      ],
      ["CUSTOM-SCRIPT-MIB::scriptStatus.0", "STRING", '"ERR"'],
    ]);
    await h.notifier.stop();
  });

  it("prototype_compat: only sends the old trap alone, status OK for a success", async () => {
    const h = notifierFor("compat-only", { targets: [v2cTarget()], prototype_compat: "only" });
    h.bus.publish(SWITCHOVER_SUCCEEDED);
    const traps = (await trapd.waitFor((all) => all.some(ofCluster("compat-only")))).filter(
      ofCluster("compat-only"),
    );
    expect(traps.map((t) => t.trapOid)).toEqual(["CUSTOM-SCRIPT-MIB::netSnmpScriptResEntry"]);
    expect(varbindValue(traps[0] as ReceivedTrap, "scriptStatus.0")).toBe('"OK"');
    await h.notifier.stop();
  });
});

describe("a trap target that is down", () => {
  it("delays no publisher, is counted as failed, and does not hold up the other targets", async () => {
    const deadPort = await freeUdpPort(); // nothing listens there
    const h = notifierFor("dead-target", {
      targets: [
        {
          host: "127.0.0.1",
          port: deadPort,
          community: COMMUNITY,
          inform: true,
          timeout: "200ms",
          retries: 1,
        },
        v2cTarget(),
      ],
    });
    for (let i = 0; i < 3; i++) h.bus.publish(SWITCHOVER_SUCCEEDED);
    // Every publish returned having only queued: nothing sent, nothing failed yet. (Read the one
    // metric directly: serialising the whole registry could let the event loop turn.)
    const dead = `127.0.0.1:${deadPort}`;
    const depth = await h.registry.getSingleMetric("z2mha_snmp_queue_depth")?.get();
    expect(depth?.values.find((v) => v.labels.target === dead)?.value).toBe(3);
    const failed = await h.registry.getSingleMetric("z2mha_snmp_notifications_failed_total")?.get();
    expect(failed?.values ?? []).toEqual([]);

    await trapd.waitFor((all) => all.filter(ofCluster("dead-target")).length >= 3);
    await expect
      .poll(
        async () =>
          metric(await h.registry.metrics(), "z2mha_snmp_notifications_failed_total", { target: dead }),
        {
          timeout: 15_000,
        },
      )
      .toBe(3);
    const text = await h.registry.metrics();
    expect(metric(text, "z2mha_snmp_notifications_sent_total", { target: dead })).toBe(0);
    expect(metric(text, "z2mha_snmp_notifications_sent_total", { target: `127.0.0.1:${trapd.port}` })).toBe(
      3,
    );
    expect(metric(text, "z2mha_snmp_queue_depth", { target: dead })).toBe(0);
    const warnings = h.log.map((l) => JSON.parse(l)).filter((e) => e.level === 40);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({ target: dead, error: "Request timed out" });
    expect(h.log.join("")).not.toContain(COMMUNITY);
    await h.notifier.stop();
  });

  it("stop() sends what is queued before closing", async () => {
    const h = notifierFor("flush-on-stop", { targets: [v2cTarget({ inform: true })] });
    for (let i = 0; i < 5; i++) h.bus.publish(SWITCHOVER_SUCCEEDED);
    await h.notifier.stop();
    expect(metric(await h.registry.metrics(), "z2mha_snmp_notifications_sent_total", {})).toBe(5);
    await trapd.waitFor((all) => all.filter(ofCluster("flush-on-stop")).length === 5);
  });
});

describe("a MIB moved to another root", () => {
  it("decodes the sidecar's notifications when both use the new root", async () => {
    const dir = mkdtempSync(join(tmpdir(), "z2mha-rerooted-"));
    const root = "1.3.6.1.4.1.99999.42";
    execFileSync(
      join(REPO, "node_modules", ".bin", "tsx"),
      [join(REPO, "scripts", "mib-reroot.ts"), "--oid", root, "--out", join(dir, "ZIGBEE2MQTT-HA-MIB.txt")],
      { stdio: "pipe" },
    );
    const other = await startSnmptrapd({ mibDirs: [dir], communities: [COMMUNITY] });
    try {
      expect(other.stderr).toBe("");
      const h = notifierFor("rerooted", {
        targets: [{ host: "127.0.0.1", port: other.port, community: COMMUNITY }],
        enterprise_oid: root,
      });
      h.bus.publish(SWITCHOVER_SUCCEEDED);
      const trap = await other.waitForTrap("z2mhaSwitchoverSucceeded");
      expect(trap.trapOid).toBe("ZIGBEE2MQTT-HA-MIB::z2mhaSwitchoverSucceeded");
      expect(varbindValue(trap, "z2mhaNewActiveNode.0")).toBe("node2");
      const oid = execFileSync(
        "snmptranslate",
        [
          "-M",
          `${dir}:${baseMibDir()}`,
          "-m",
          "ZIGBEE2MQTT-HA-MIB",
          "-On",
          "ZIGBEE2MQTT-HA-MIB::z2mhaSwitchoverSucceeded",
        ],
        { encoding: "utf8" },
      ).trim();
      expect(oid).toBe(`.${root}.0.2`);
      await h.notifier.stop();
    } finally {
      await other.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
