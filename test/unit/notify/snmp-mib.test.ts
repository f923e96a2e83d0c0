import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { DEFAULT_MIB, mibRoot, rerootMib } from "../../../scripts/mib-reroot.js";
import {
  checkRootOid,
  DEFAULT_ENTERPRISE_OID,
  NOTIFICATIONS,
  OBJECTS,
  OUTCOMES,
} from "../../../sidecar/notify/snmp-mib.js";
import { MIBS_DIR } from "../../helpers/snmp-mibs.js";

const mib = readFileSync(join(MIBS_DIR, "ZIGBEE2MQTT-HA-MIB.txt"), "utf8");

describe("the sidecar's picture of ZIGBEE2MQTT-HA-MIB matches the file", () => {
  it("uses the file's root as its default root", () => {
    expect(mibRoot(mib)).toBe(DEFAULT_ENTERPRISE_OID);
  });

  it("has every notification with the file's number and OBJECTS clause, in order", () => {
    const found = [
      ...mib.matchAll(
        /(\w+) NOTIFICATION-TYPE\s+OBJECTS\s+\{([^}]*)\}[\s\S]*?::= \{ z2mhaNotifications (\d+) \}/g,
      ),
    ].map((m) => [m[1], { arc: Number(m[3]), objects: (m[2] as string).split(",").map((s) => s.trim()) }]);
    expect(Object.fromEntries(found)).toEqual(
      Object.fromEntries(
        Object.entries(NOTIFICATIONS).map(([name, n]) => [name, { arc: n.arc, objects: [...n.objects] }]),
      ),
    );
  });

  it("has every object with the file's number", () => {
    const found = [...mib.matchAll(/(\w+) OBJECT-TYPE[\s\S]*?::= \{ z2mhaObjects (\d+) \}/g)].map((m) => [
      m[1],
      Number(m[2]),
    ]);
    expect(Object.fromEntries(found)).toEqual(
      Object.fromEntries(Object.entries(OBJECTS).map(([name, o]) => [name, o.arc])),
    );
  });

  it("has the outcome enumeration of the file", () => {
    const syntax =
      /Z2mhaOutcome ::= TEXTUAL-CONVENTION[\s\S]*?SYNTAX\s+INTEGER \{([^}]*)\}/.exec(mib)?.[1] ?? "";
    const values = [...syntax.matchAll(/(\w+)\((\d+)\)/g)].map((m) => [m[1], Number(m[2])]);
    expect(Object.fromEntries(values)).toEqual(OUTCOMES);
  });
});

describe("mib-reroot", () => {
  it("moves the registration and the root comment, and nothing else", () => {
    const moved = rerootMib(mib, "1.3.6.1.4.1.99999.7");
    expect(mibRoot(moved)).toBe("1.3.6.1.4.1.99999.7");
    expect(moved).toContain("::= { enterprises 99999 7 }");
    expect(moved).toContain("-- Root: 1.3.6.1.4.1.99999.7, set with scripts/mib-reroot.ts");
    expect(moved).not.toContain("32473");
    const before = new Set(mib.split("\n"));
    const after = new Set(moved.split("\n"));
    expect([...before].filter((line) => !after.has(line)).map((l) => l.trim())).toEqual([
      "-- Root: 1.3.6.1.4.1.32473.8485, under the documentation enterprise",
      "-- number of RFC 5612: a placeholder until the project holds a",
      "-- Private Enterprise Number of its own (see mibs/README.md).",
      "::= { enterprises 32473 8485 }",
    ]);
    expect([...after].filter((line) => !before.has(line)).map((l) => l.trim())).toEqual([
      "-- Root: 1.3.6.1.4.1.99999.7, set with scripts/mib-reroot.ts",
      "-- (see mibs/README.md).",
      "::= { enterprises 99999 7 }",
    ]);
    // Rerooting again works from the rerooted text, and back to the original root restores the registration.
    expect(mibRoot(rerootMib(moved, DEFAULT_ENTERPRISE_OID))).toBe(DEFAULT_ENTERPRISE_OID);
  });

  it("refuses roots outside enterprises or beyond 32-bit sub-identifiers", () => {
    expect(() => rerootMib(mib, "1.3.6.1.3.5")).toThrow(/under 1\.3\.6\.1\.4\.1/);
    expect(() => rerootMib(mib, "1.3.6.1.4.1.4294967296")).toThrow(/4294967296/);
    expect(() => rerootMib(mib, "1.3.6.1.4.1")).toThrow(/under 1\.3\.6\.1\.4\.1/);
    expect(() => rerootMib("no module here", "1.3.6.1.4.1.5")).toThrow(/registration/);
    expect(checkRootOid("1.3.6.1.4.1.4294967295.0")).toBeUndefined();
  });

  it("reads the repository's MIB by default", () => {
    expect(DEFAULT_MIB).toBe(join(MIBS_DIR, "ZIGBEE2MQTT-HA-MIB.txt"));
  });
});
