import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  DEFAULT_ENTERPRISE_OID,
  NOTIFICATION_NAMES,
  notificationOid,
  OBJECTS,
  type ObjectName,
  objectInstanceOid,
} from "../../sidecar/notify/snmp-mib.js";
import { baseMibDir, FIXTURE_MIBS_DIR, MIBS_DIR, REPO } from "../helpers/snmp-mibs.js";

const MIB_FILE = join(MIBS_DIR, "ZIGBEE2MQTT-HA-MIB.txt");
const work = mkdtempSync(join(tmpdir(), "z2mha-mib-test-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

interface LintMessage {
  line: number;
  severity: number;
  tag: string;
  text: string;
}

/** smilint -l 6 with a config of our own (search path, nothing hidden); exits 0 even on errors, so parse. */
function smilint(file: string): LintMessage[] {
  const conf = join(work, "smi.conf");
  writeFileSync(conf, `path ${baseMibDir()}:${MIBS_DIR}\n`);
  const run = spawnSync("smilint", ["-c", conf, "-s", "-m", "-l", "6", file], { encoding: "utf8" });
  if (run.error) throw run.error;
  const output = `${run.stdout}${run.stderr}`.trim();
  if (output === "") return [];
  return output.split("\n").map((line) => {
    const match = /^[^:]+:(\d+): \[(\d)\] \{([\w-]+)\} (.*)$/.exec(line);
    if (!match) throw new Error(`unexpected smilint output: ${line}`);
    return {
      line: Number(match[1]),
      severity: Number(match[2]),
      tag: match[3] as string,
      text: match[4] as string,
    };
  });
}

function snmptranslate(mibDirs: string[], module: string, ...args: string[]) {
  const run = spawnSync(
    "snmptranslate",
    ["-M", [...mibDirs, baseMibDir()].join(":"), "-m", module, ...args],
    {
      encoding: "utf8",
    },
  );
  if (run.error) throw run.error;
  return run;
}

function reroot(oid: string): string {
  const dir = mkdtempSync(join(work, "reroot-"));
  const out = join(dir, "ZIGBEE2MQTT-HA-MIB.txt");
  const run = spawnSync(
    join(REPO, "node_modules", ".bin", "tsx"),
    [join(REPO, "scripts", "mib-reroot.ts"), "--oid", oid, "--out", out],
    { encoding: "utf8" },
  );
  expect(run.stderr).toBe("");
  expect(run.status).toBe(0);
  return out;
}

describe("ZIGBEE2MQTT-HA-MIB under the real MIB tools", () => {
  it("passes smilint -l 6 with only the justified warning on the root's registration", () => {
    const messages = smilint(MIB_FILE);
    const text = readFileSync(MIB_FILE, "utf8").split("\n");
    const registration = text.findIndex((line) => /::= \{ enterprises [\d ]+\}/.test(line)) + 1;
    expect(messages).toEqual([
      { line: registration, severity: 5, tag: "node-implicit", text: "warning: implicit node definition" },
    ]);
    // The justification sits right above the line it explains.
    expect(text.slice(registration - 9, registration - 1).join("\n")).toMatch(/warns \{node-implicit\} here/);
  });

  it("loads in snmptranslate without a complaint, every notification and object at the OID the sidecar sends", () => {
    const tree = snmptranslate([MIBS_DIR], "ZIGBEE2MQTT-HA-MIB", "-Tp");
    expect(tree.stderr).toBe("");
    expect(tree.status).toBe(0);
    for (const name of [...NOTIFICATION_NAMES, ...Object.keys(OBJECTS)]) expect(tree.stdout).toContain(name);

    const objects = Object.keys(OBJECTS) as ObjectName[];
    const names = [
      ...NOTIFICATION_NAMES.map((n) => `ZIGBEE2MQTT-HA-MIB::${n}`),
      ...objects.map((o) => `ZIGBEE2MQTT-HA-MIB::${o}.0`),
    ];
    const run = snmptranslate([MIBS_DIR], "ZIGBEE2MQTT-HA-MIB", "-On", ...names);
    expect(run.stderr).toBe("");
    const oids = run.stdout.split("\n").filter((l) => l.trim() !== "");
    expect(oids).toEqual([
      ...NOTIFICATION_NAMES.map((n) => `.${notificationOid(DEFAULT_ENTERPRISE_OID, n)}`),
      ...objects.map((o) => `.${objectInstanceOid(DEFAULT_ENTERPRISE_OID, o)}`),
    ]);
  });

  it("shows the typed objects: enumeration, units and display hints", () => {
    const outcome = snmptranslate(
      [MIBS_DIR],
      "ZIGBEE2MQTT-HA-MIB",
      "-Td",
      "ZIGBEE2MQTT-HA-MIB::z2mhaOperationOutcome",
    );
    expect(outcome.stdout).toMatch(
      /SYNTAX\s+INTEGER \{succeeded\(1\), failed\(2\), rolledBack\(3\), interrupted\(4\)\}/,
    );
    const duration = snmptranslate(
      [MIBS_DIR],
      "ZIGBEE2MQTT-HA-MIB",
      "-Td",
      "ZIGBEE2MQTT-HA-MIB::z2mhaOperationDuration",
    );
    expect(duration.stdout).toMatch(/UNITS\s+"milliseconds"/);
    const message = snmptranslate(
      [MIBS_DIR],
      "ZIGBEE2MQTT-HA-MIB",
      "-Td",
      "ZIGBEE2MQTT-HA-MIB::z2mhaMessage",
    );
    expect(message.stdout).toMatch(/DISPLAY-HINT\s+"255t"/);
  });

  it("regenerated for a root that is an enterprise number itself: no warning at all, new OIDs", () => {
    const file = reroot("1.3.6.1.4.1.99999");
    expect(smilint(file)).toEqual([]);
    const run = snmptranslate(
      [join(file, "..")],
      "ZIGBEE2MQTT-HA-MIB",
      "-On",
      "ZIGBEE2MQTT-HA-MIB::z2mhaSyncFailed",
    );
    expect(run.stderr).toBe("");
    expect(run.stdout.trim()).toBe(".1.3.6.1.4.1.99999.0.8");
  });

  it("regenerated for a deeper root: the justified warning once per unnamed arc, nothing else", () => {
    const file = reroot("1.3.6.1.4.1.99999.3.1");
    const registration =
      readFileSync(file, "utf8")
        .split("\n")
        .findIndex((line) => line.includes("::= { enterprises 99999 3 1 }")) + 1;
    expect(smilint(file).map((m) => `${m.line} ${m.tag}`)).toEqual([
      `${registration} node-implicit`,
      `${registration} node-implicit`,
    ]);
    const run = snmptranslate(
      [join(file, "..")],
      "ZIGBEE2MQTT-HA-MIB",
      "-On",
      "ZIGBEE2MQTT-HA-MIB::z2mhaMessage.0",
    );
    expect(run.stdout.trim()).toBe(".1.3.6.1.4.1.99999.3.1.1.9.0");
  });
});

describe("the prototype's MIB fixture", () => {
  it("names the compatibility trap and its four objects at the prototype's OIDs", () => {
    const run = snmptranslate(
      [FIXTURE_MIBS_DIR],
      "CUSTOM-SCRIPT-MIB",
      "-On",
      "CUSTOM-SCRIPT-MIB::netSnmpScriptResEntry",
      "CUSTOM-SCRIPT-MIB::scriptName.0",
      "CUSTOM-SCRIPT-MIB::scriptHost.0",
      "CUSTOM-SCRIPT-MIB::scriptMessage.0",
      "CUSTOM-SCRIPT-MIB::scriptStatus.0",
    );
    expect(run.stderr).toBe("");
    expect(run.stdout.split("\n").filter((l) => l.trim() !== "")).toEqual([
      ".1.3.6.1.4.1.8072.2.1.1",
      ".1.3.6.1.4.1.8072.2.1.1.1.0",
      ".1.3.6.1.4.1.8072.2.1.1.2.0",
      ".1.3.6.1.4.1.8072.2.1.1.3.0",
      ".1.3.6.1.4.1.8072.2.1.1.4.0",
    ]);
  });
});
