import { describe, expect, it } from "vitest";
import { NotificationMapper, type Z2mhaNotification } from "../../../sidecar/notify/snmp-events.js";
import {
  asciiCut,
  toMibNotification,
  toPrototypeTrap,
  utf8Cut,
} from "../../../sidecar/notify/snmp-varbinds.js";

const ROOT = "1.3.6.1.4.1.32473.8485";

function failedSwitchover(clusterName = "home", message = "nvram_write exited with 1"): Z2mhaNotification {
  const n = new NotificationMapper(clusterName).map({
    type: "operation.finished",
    operation: {
      id: "op-7",
      kind: "switchover",
      status: "rolled_back",
      mutating: true,
      started_at: "2026-11-26T10:00:00.000Z",
      duration_ms: 61_000,
      trigger: "api",
      params: { from: "node1", to: "node2" },
      steps: [],
      error: { step: "nvram-write", message },
    },
  });
  if (!n) throw new Error("no notification");
  return n;
}

describe("ZIGBEE2MQTT-HA-MIB varbinds", () => {
  it("binds the notification's objects in MIB order, as .0 instances under the root, typed", () => {
    const out = toMibNotification(ROOT, failedSwitchover());
    expect(out.trapOid).toBe(`${ROOT}.0.3`);
    expect(out.mib).toBe("ZIGBEE2MQTT-HA-MIB");
    expect(out.varbinds.map((v) => [v.oid, v.type])).toEqual([
      [`${ROOT}.1.1.0`, "OctetString"],
      [`${ROOT}.1.5.0`, "OctetString"],
      [`${ROOT}.1.3.0`, "OctetString"],
      [`${ROOT}.1.4.0`, "OctetString"],
      [`${ROOT}.1.6.0`, "OctetString"],
      [`${ROOT}.1.7.0`, "Integer"],
      [`${ROOT}.1.8.0`, "Gauge"],
      [`${ROOT}.1.9.0`, "OctetString"],
    ]);
    const values = out.varbinds.map((v) => (Buffer.isBuffer(v.value) ? v.value.toString() : v.value));
    expect(values).toEqual(["home", "op-7", "node1", "node2", "nvram-write", 3, 61_000, expect.any(String)]);
  });

  it("follows a configured root for every OID", () => {
    const out = toMibNotification("1.3.6.1.4.1.99999.3", failedSwitchover());
    expect(out.trapOid).toBe("1.3.6.1.4.1.99999.3.0.3");
    expect(out.varbinds.every((v) => v.oid.startsWith("1.3.6.1.4.1.99999.3.1."))).toBe(true);
  });

  it("encodes TruthValue as 1/2", () => {
    const mapper = new NotificationMapper("home");
    const state = (af: boolean, m: boolean) => ({
      type: "state.changed" as const,
      state: {
        version: 1 as const,
        active: "node1",
        automation: { automatic_failover: af, maintenance: m },
        fenced: {},
      },
    });
    mapper.map(state(true, false));
    const paused = mapper.map(state(true, true));
    if (!paused) throw new Error("no notification");
    const out = toMibNotification(ROOT, paused);
    expect(out.trapOid).toBe(`${ROOT}.0.12`);
    expect(out.varbinds.slice(1, 3).map((v) => v.value)).toEqual([1, 1]);
    const resumed = mapper.map(state(true, false));
    expect(resumed?.name).toBe("z2mhaAutomationResumed");
    if (resumed)
      expect(
        toMibNotification(ROOT, resumed)
          .varbinds.slice(1, 3)
          .map((v) => v.value),
      ).toEqual([1, 2]);
    const off = mapper.map(state(false, false));
    if (off)
      expect(
        toMibNotification(ROOT, off)
          .varbinds.slice(1, 3)
          .map((v) => v.value),
      ).toEqual([2, 2]);
    expect(off?.name).toBe("z2mhaAutomationPaused");
  });

  it("cuts long UTF-8 text at a character boundary to the object's size", () => {
    const long = `${"x".repeat(253)}äöü`;
    const out = toMibNotification(ROOT, failedSwitchover("Süd", long));
    const message = out.varbinds.at(-1)?.value as Buffer;
    expect(message.length).toBeLessThanOrEqual(255);
    expect(message.toString("utf8")).not.toContain("\uFFFD");
    expect(String(out.varbinds[0]?.value)).toBe("Süd");
  });

  it("utf8Cut and asciiCut keep within their sizes", () => {
    expect(utf8Cut("€€", 5).toString()).toBe("€");
    expect(utf8Cut("€€", 6).toString()).toBe("€€");
    expect(utf8Cut("abc", 0).length).toBe(0);
    expect(asciiCut("nöde\n1", 32).toString()).toBe("n?de?1");
    expect(asciiCut("a".repeat(40), 32).length).toBe(32);
  });
});

describe("the prototype's CUSTOM-SCRIPT-MIB trap", () => {
  it("carries the four strings under Net-SNMP's arc, as the bash scripts sent them", () => {
    const out = toPrototypeTrap(failedSwitchover());
    expect(out.trapOid).toBe("1.3.6.1.4.1.8072.2.1.1");
    expect(out.mib).toBe("CUSTOM-SCRIPT-MIB");
    expect(out.varbinds.map((v) => [v.oid, v.type, (v.value as Buffer).toString()])).toEqual([
      ["1.3.6.1.4.1.8072.2.1.1.1.0", "OctetString", "z2m-ha switchover"],
      ["1.3.6.1.4.1.8072.2.1.1.2.0", "OctetString", "home"],
      [
        "1.3.6.1.4.1.8072.2.1.1.3.0",
        "OctetString",
        "switchover from node1 to node2 failed at step nvram-write: nvram_write exited with 1; rolled back, node1 is active again",
      ],
      ["1.3.6.1.4.1.8072.2.1.1.4.0", "OctetString", "ERR"],
    ]);
  });
});
