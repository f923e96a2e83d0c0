/**
 * SNMP notifications triggered by real operations (issue 7's lab test): the real sidecar in the
 * lab's controller, real switchovers, failovers, syncs, faults, sending to a real snmptrapd in the
 * controller's network namespace that decodes with ZIGBEE2MQTT-HA-MIB and the prototype's
 * CUSTOM-SCRIPT-MIB.
 *
 * One sidecar, five targets: SNMPv2c traps, v2c informs, v3 authPriv traps, v3 authPriv informs
 * (all four at the same snmptrapd, told apart by community or user), and an inform target where no
 * host is, which must delay nothing and be counted. prototype_compat "also": every notification is
 * also sent as the prototype's trap.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEFAULT_ENTERPRISE_OID } from "../../sidecar/notify/snmp-mib.js";
import { deriveEngineId } from "../../sidecar/notify/snmp-session.js";
import type { OperationRecord } from "../../sidecar/types.js";
import { FIXTURE_MIBS_DIR, MIBS_DIR } from "../helpers/snmp-mibs.js";
import { type ReceivedTrap, type Snmptrapd, startSnmptrapd, varbindValue } from "../helpers/snmptrapd.js";
import { enterArgv } from "./host/namespaces.js";
import {
  leaveNode1Active,
  metricsText,
  nodeIn,
  sample,
  waitForEnded,
  waitForReadyStandbys,
} from "./policy-helpers.js";
import { baseline, type SidecarHandle, sharedLab, startSidecar } from "./sidecar-harness.js";
import type { Lab } from "./world.js";

const CLUSTER = "snmp-lab";
const AUTH = "lab-auth-pass-1";
const PRIV = "lab-priv-pass-1";
const PORT = 11162;
const GRACE_MS = 6_000;

/** The four live targets, as the receiver tells them apart. */
const RECEIVERS = [
  { name: "v2c-trap", version: "2c", security: "lab-trap" },
  { name: "v2c-inform", version: "2c", security: "lab-inform" },
  { name: "v3-trap", version: "3", security: "z2mtrap" },
  { name: "v3-inform", version: "3", security: "z2minform" },
] as const;
type Receiver = (typeof RECEIVERS)[number];

const MIB = "ZIGBEE2MQTT-HA-MIB::";
const COMPAT_TRAP = "CUSTOM-SCRIPT-MIB::netSnmpScriptResEntry";

let lab: Lab;
let h: SidecarHandle;
let trapd: Snmptrapd;
let persistDir: string;

const fromReceiver = (r: Receiver) => (t: ReceivedTrap) =>
  t.version === r.version && t.security === r.security;

/**
 * Waits until every receiver got, after trap number `after`, a `name` notification whose varbinds
 * (by suffix, e.g. "z2mhaNodeId.0") have the given printed values; returns them per receiver.
 */
async function expectAtEveryReceiver(
  after: number,
  name: string,
  values: Record<string, string | RegExp> = {},
  timeoutMs = 30_000,
): Promise<ReceivedTrap[]> {
  const matches = (t: ReceivedTrap) =>
    t.trapOid === `${MIB}${name}` &&
    Object.entries(values).every(([suffix, want]) => {
      const got = varbindValue(t, suffix);
      return got !== undefined && (typeof want === "string" ? got === want : want.test(got));
    });
  const traps = await trapd.waitFor(
    (all) => RECEIVERS.every((r) => all.slice(after).some((t) => fromReceiver(r)(t) && matches(t))),
    timeoutMs,
    `${name} ${JSON.stringify(values, (_k, v) => (v instanceof RegExp ? String(v) : v))} at every receiver`,
  );
  return RECEIVERS.map(
    (r) => traps.slice(after).find((t) => fromReceiver(r)(t) && matches(t)) as ReceivedTrap,
  );
}

function operationValues(op: OperationRecord): Record<string, string> {
  return { "z2mhaClusterName.0": CLUSTER, "z2mhaOperationId.0": op.id };
}

beforeAll(async () => {
  lab = await sharedLab();
  await baseline(lab);
  // snmptrapd inside the controller (where the sidecar runs), on the controller's lab address; its
  // persistent state (engine boots) in a directory of its own, its pid for a sure stop.
  persistDir = mkdtempSync(join(tmpdir(), "z2mha-lab-snmptrapd-"));
  trapd = await startSnmptrapd({
    mibDirs: [MIBS_DIR, FIXTURE_MIBS_DIR],
    communities: ["lab-trap", "lab-inform"],
    users: [
      // v3 traps come from the sidecar's engine (derived from cluster_name); informs are localized
      // to snmptrapd's own engine, which the sidecar discovers.
      {
        name: "z2mtrap",
        authKey: AUTH,
        privKey: PRIV,
        engineId: deriveEngineId(DEFAULT_ENTERPRISE_OID, CLUSTER),
      },
      { name: "z2minform", authKey: AUTH, privKey: PRIV },
    ],
    address: lab.info.controller.address,
    port: PORT,
    wrap: enterArgv(lab.layout, lab.name, "controller", [
      "/usr/bin/env",
      `SNMP_PERSISTENT_DIR=${persistDir}`,
      "/bin/sh",
      "-c",
      'echo $$ >"$0"; exec "$@"',
      join(persistDir, "pid"),
    ]),
  });
  const controller = lab.info.controller.address;
  const dead = lab.info.subnet.replace(/\.0\/24$/, ".250");
  h = await startSidecar(lab, {
    cluster_name: CLUSTER,
    failover: {
      automatic: true,
      grace: `${GRACE_MS}ms`,
      restart_attempts: 0,
      cooldown: "1s",
      arm_standby: false,
    },
    monitor: { probe_interval: "1s", probe_timeout: "1s", failures: 3 },
    snmp: {
      prototype_compat: "also",
      targets: [
        { name: "v2c-trap", host: controller, port: PORT, community: "lab-trap" },
        { name: "v2c-inform", host: controller, port: PORT, community: "lab-inform", inform: true },
        {
          name: "v3-trap",
          host: controller,
          port: PORT,
          version: "3",
          user: { name: "z2mtrap", auth_key: AUTH, priv_key: PRIV },
        },
        {
          name: "v3-inform",
          host: controller,
          port: PORT,
          version: "3",
          inform: true,
          user: { name: "z2minform", auth_key: AUTH, priv_key: PRIV },
        },
        // Nobody at this address: each notification waits 3 s × 2 attempts, then counts as failed.
        {
          name: "dead",
          host: dead,
          port: 162,
          community: "lab-trap",
          inform: true,
          timeout: "3s",
          retries: 1,
        },
      ],
    },
  });
}, 300_000);

afterAll(async () => {
  await h?.stop();
  // nsenter may not pass the signal on: make sure snmptrapd itself is gone. It writes its
  // persistent state as it exits, so wait for that before removing the directory.
  if (persistDir) {
    await lab.exec("controller", [
      "/bin/sh",
      "-c",
      'pid=$(cat "$1") || exit 0; kill "$pid" 2>/dev/null; i=0; while kill -0 "$pid" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done',
      "sh",
      join(persistDir, "pid"),
    ]);
    rmSync(persistDir, { recursive: true, force: true });
  }
  await trapd?.stop();
  await leaveNode1Active(lab);
});

describe("SNMP notifications triggered by real operations", () => {
  it("automation paused and resumed (PUT /api/v1/automation)", async () => {
    const after = trapd.traps().length;
    await h.api.call("PUT", "/api/v1/automation", { maintenance: true });
    await expectAtEveryReceiver(after, "z2mhaAutomationPaused", {
      "z2mhaClusterName.0": CLUSTER,
      "z2mhaMaintenanceMode.0": "true(1)",
      "z2mhaAutomaticFailover.0": "true(1)",
      "z2mhaMessage.0": /^automation paused: maintenance mode entered/,
    });
    await h.api.call("PUT", "/api/v1/automation", { maintenance: false });
    await expectAtEveryReceiver(after, "z2mhaAutomationResumed", {
      "z2mhaMaintenanceMode.0": "false(2)",
      "z2mhaMessage.0": /^automation resumed: maintenance mode left/,
    });
  });

  it("sync succeeded; the dead target delays nothing: its notifications still wait while the live ones are in", async () => {
    const after = trapd.traps().length;
    const sync = await h.api.run("sync");
    expect(sync.status).toBe("succeeded");
    await expectAtEveryReceiver(after, "z2mhaSyncSucceeded", {
      ...operationValues(sync),
      "z2mhaNodeId.0": "node1",
      "z2mhaOperationOutcome.0": "succeeded(1)",
      "z2mhaOperationDuration.0": `${sync.duration_ms} milliseconds`,
    });
    // The sync is over and reported everywhere else, while the dead target has not even given up
    // on the automation notifications queued before it: sending never held the operation up.
    const metrics = await metricsText(h.api);
    expect(sample(metrics, "z2mha_snmp_queue_depth", { target: "dead" })).toBeGreaterThan(0);
    expect(sample(metrics, "z2mha_snmp_notifications_sent_total", { target: "dead" })).toBe(0);
  });

  it("sync failed (a standby's disk is full)", async () => {
    await waitForReadyStandbys(h.api);
    const dataDir = lab.node("node1").dataDir;
    await lab.fault("fill-disk", "node3", { disk: "home" });
    try {
      await lab.writeFile("node1", `${dataDir}/snmp-lab.txt`, `${"x".repeat(100_000)}\n`, { user: "zigbee" });
      const after = trapd.traps().length;
      const sync = await h.api.run("sync");
      expect(sync.status).toBe("failed");
      await expectAtEveryReceiver(after, "z2mhaSyncFailed", {
        ...operationValues(sync),
        "z2mhaNodeId.0": "node1",
        "z2mhaOperationStep.0": "stage on node3",
        "z2mhaOperationOutcome.0": "failed(2)",
        "z2mhaMessage.0": /^sync from node1 failed at step stage on node3: /,
      });
    } finally {
      await lab.fault("free-disk", "node3", { disk: "home" });
      await lab.exec("node1", ["rm", "-f", `${dataDir}/snmp-lab.txt`]);
    }
    expect((await h.api.run("sync")).status).toBe("succeeded");
  });

  it("switchover started and failed (rolled back: the target's nvram_write fails), failover started and failed (nothing to undo: the target's tools are missing)", async () => {
    await waitForReadyStandbys(h.api);
    await lab.fault("tool-fault", "node3", { tool: "nvram_write", mode: "fail" });
    let after = trapd.traps().length;
    try {
      const switchover = await h.api.run("switchover", { target: "node3" });
      expect(switchover.status, JSON.stringify(switchover.error)).toBe("rolled_back");
      await expectAtEveryReceiver(after, "z2mhaSwitchoverStarted", {
        ...operationValues(switchover),
        "z2mhaPreviousActiveNode.0": "node1",
        "z2mhaNewActiveNode.0": "node3",
      });
      await expectAtEveryReceiver(after, "z2mhaSwitchoverFailed", {
        ...operationValues(switchover),
        "z2mhaPreviousActiveNode.0": "node1",
        "z2mhaNewActiveNode.0": "node3",
        "z2mhaOperationStep.0": switchover.error?.step as string,
        "z2mhaOperationOutcome.0": "rolledBack(3)",
        "z2mhaMessage.0":
          /^switchover from node1 to node3 failed at step (prepare|write) NVRAM on node3.*: .*rolled back, node1 is active again$/,
      });
    } finally {
      await lab.fault("tool-fault", "node3", { clear: true });
    }
    await lab.waitForZigbee2mqtt("node1");

    await lab.fault("break-tools", "node3");
    try {
      after = trapd.traps().length;
      // The preflight fails before anything was touched: nothing to undo, the operation ends failed.
      const failover = await h.api.run("failover", { target: "node3" });
      expect(failover.status).toBe("failed");
      await expectAtEveryReceiver(after, "z2mhaFailoverStarted", {
        ...operationValues(failover),
        "z2mhaPreviousActiveNode.0": "node1",
        "z2mhaNewActiveNode.0": "node3",
      });
      await expectAtEveryReceiver(after, "z2mhaFailoverFailed", {
        ...operationValues(failover),
        "z2mhaNewActiveNode.0": "node3",
        "z2mhaOperationStep.0": failover.error?.step as string,
        "z2mhaOperationOutcome.0": "failed(2)",
      });
    } finally {
      await lab.fault("fix-tools", "node3");
    }
    await lab.waitForZigbee2mqtt("node1");
  });

  it("switchover started and succeeded", async () => {
    await waitForReadyStandbys(h.api);
    const after = trapd.traps().length;
    const switchover = await h.api.run("switchover", { target: "node2" });
    expect(switchover.status, JSON.stringify(switchover.error)).toBe("succeeded");
    await expectAtEveryReceiver(after, "z2mhaSwitchoverStarted", operationValues(switchover));
    await expectAtEveryReceiver(after, "z2mhaSwitchoverSucceeded", {
      ...operationValues(switchover),
      "z2mhaPreviousActiveNode.0": "node1",
      "z2mhaNewActiveNode.0": "node2",
      "z2mhaOperationOutcome.0": "succeeded(1)",
      "z2mhaOperationDuration.0": `${switchover.duration_ms} milliseconds`,
      "z2mhaMessage.0": /^switchover from node1 to node2 succeeded in .*, node2 is active$/,
    });
  });

  it("the active's link cut: node unreachable, failover started and succeeded; link back: node reachable", async () => {
    await waitForReadyStandbys(h.api);
    const after = trapd.traps().length;
    const cut = Date.now();
    await lab.fault("cut-link", "node2");
    let failover: OperationRecord;
    try {
      await expectAtEveryReceiver(after, "z2mhaNodeUnreachable", {
        "z2mhaNodeId.0": "node2",
        "z2mhaMessage.0": /^node node2 is unreachable: no answer over SSH 3 times in a row/,
      });
      failover = await waitForEnded(h.api, "failover", cut);
      expect(failover, JSON.stringify(failover.error)).toMatchObject({
        status: "succeeded",
        trigger: "policy",
        params: { from: "node2", to: "node1" },
      });
      await expectAtEveryReceiver(after, "z2mhaFailoverStarted", {
        ...operationValues(failover),
        "z2mhaPreviousActiveNode.0": "node2",
        "z2mhaNewActiveNode.0": "node1",
        "z2mhaMessage.0": /^failover from node2 to node1 started \(policy: node2 down: /,
      });
      await expectAtEveryReceiver(after, "z2mhaFailoverSucceeded", {
        ...operationValues(failover),
        "z2mhaOperationOutcome.0": "succeeded(1)",
      });
    } finally {
      await lab.fault("restore-link", "node2");
    }
    await expectAtEveryReceiver(after, "z2mhaNodeReachable", {
      "z2mhaNodeId.0": "node2",
      "z2mhaMessage.0": "node node2 is reachable again",
    });
    // node2's zigbee2mqtt ran on behind the cut cable: the guard stops it.
    await waitForEnded(h.api, "fence", cut, (o) => o.params.node === "node2");
  });

  it("split brain: zigbee2mqtt started by hand on a standby", async () => {
    const status = await h.api.waitForStatus(
      "node1 active and healthy, nothing running",
      (s) => s.active === "node1" && nodeIn(s, "node1").health === "active-healthy" && !s.running_operation,
    );
    expect(status.active).toBe("node1");
    const after = trapd.traps().length;
    const mark = Date.now();
    // Started by hand (not waited for: the guard stops it within about a probe interval).
    expect((await lab.service("node3", "start")).code).toBe(0);
    await expectAtEveryReceiver(after, "z2mhaSplitBrainDetected", {
      "z2mhaNodeId.0": "node3",
      "z2mhaMessage.0": /node3 .*while node1 is active/,
    });
    const fence = await waitForEnded(h.api, "fence", mark, (o) => o.params.node === "node3");
    expect(fence).toMatchObject({ trigger: "guard" });
    expect((await lab.service("node3", "status")).code).not.toBe(0);
  });

  it("every notification kind reached every receiver, each also as the prototype's trap decoded by CUSTOM-SCRIPT-MIB; the dead target is counted", async () => {
    const kinds = [
      "z2mhaSwitchoverStarted",
      "z2mhaSwitchoverSucceeded",
      "z2mhaSwitchoverFailed",
      "z2mhaFailoverStarted",
      "z2mhaFailoverSucceeded",
      "z2mhaFailoverFailed",
      "z2mhaSyncSucceeded",
      "z2mhaSyncFailed",
      "z2mhaNodeUnreachable",
      "z2mhaNodeReachable",
      "z2mhaSplitBrainDetected",
      "z2mhaAutomationPaused",
      "z2mhaAutomationResumed",
    ];
    // Informs can still be on their way for the last events.
    const traps = await trapd.waitFor(
      (all) =>
        RECEIVERS.every((r) => {
          const mine = all.filter(fromReceiver(r));
          const mib = mine.filter((t) => t.trapOid.startsWith(MIB));
          return mine.length - mib.length === mib.length;
        }),
      30_000,
      "a prototype trap for every notification",
    );
    for (const r of RECEIVERS) {
      const mine = traps.filter(fromReceiver(r));
      const mib = mine.filter((t) => t.trapOid.startsWith(MIB));
      expect({
        receiver: r.name,
        kinds: [...new Set(mib.map((t) => t.trapOid.slice(MIB.length)))].sort(),
      }).toEqual({
        receiver: r.name,
        kinds: [...kinds].sort(),
      });
      for (const t of mib) {
        expect(t.varbinds[0]?.name).toMatch(/sysUpTime/);
        expect(t.varbinds[1]?.name).toBe("SNMPv2-MIB::snmpTrapOID.0");
        expect(varbindValue(t, "z2mhaClusterName.0")).toBe(CLUSTER);
      }
      // Each notification is followed by the prototype's trap for the same event.
      const compat = mine.filter((t) => t.trapOid === COMPAT_TRAP);
      expect(compat).toHaveLength(mib.length);
      for (const [i, t] of mib.entries()) {
        const old = compat[i] as ReceivedTrap;
        expect(old.varbinds.slice(2).map((v) => v.name)).toEqual([
          "CUSTOM-SCRIPT-MIB::scriptName.0",
          "CUSTOM-SCRIPT-MIB::scriptHost.0",
          "CUSTOM-SCRIPT-MIB::scriptMessage.0",
          "CUSTOM-SCRIPT-MIB::scriptStatus.0",
        ]);
        expect(varbindValue(old, "scriptHost.0")).toBe(`"${CLUSTER}"`);
        expect(varbindValue(old, "scriptMessage.0")).toBe(`"${varbindValue(t, "z2mhaMessage.0")}"`);
        const failure = /Failed$|Unreachable$|SplitBrain/.test(t.trapOid);
        expect(varbindValue(old, "scriptStatus.0")).toBe(failure ? '"ERR"' : '"OK"');
      }
    }
    const failed = mibTrap(traps, "v2c-trap", "z2mhaSwitchoverFailed");
    const failedCompat = traps
      .filter(fromReceiver(RECEIVERS[0]))
      .find(
        (t) =>
          t.trapOid === COMPAT_TRAP &&
          varbindValue(t, "scriptMessage.0") === `"${varbindValue(failed, "z2mhaMessage.0")}"`,
      );
    expect(varbindValue(failedCompat as ReceivedTrap, "scriptName.0")).toBe('"z2m-ha switchover"');

    const metrics = await metricsText(h.api);
    expect(sample(metrics, "z2mha_snmp_notifications_failed_total", { target: "dead" })).toBeGreaterThan(0);
    expect(sample(metrics, "z2mha_snmp_notifications_sent_total", { target: "dead" })).toBe(0);
    for (const r of RECEIVERS) {
      expect(sample(metrics, "z2mha_snmp_notifications_failed_total", { target: r.name })).toBe(0);
      expect(
        sample(metrics, "z2mha_snmp_notifications_sent_total", {
          target: r.name,
          mib: "ZIGBEE2MQTT-HA-MIB",
          notification: "z2mhaSwitchoverFailed",
        }),
      ).toBe(1);
    }
  });
});

function mibTrap(traps: ReceivedTrap[], receiver: string, name: string): ReceivedTrap {
  const r = RECEIVERS.find((x) => x.name === receiver) as Receiver;
  return traps.filter(fromReceiver(r)).find((t) => t.trapOid === `${MIB}${name}`) as ReceivedTrap;
}
