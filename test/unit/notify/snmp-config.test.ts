import { describe, expect, it } from "vitest";
import { ZodError } from "zod";
import { configWithSnmp, snmpConfig } from "../../helpers/snmp-config.js";

function issues(snmp: unknown): string[] {
  try {
    configWithSnmp(snmp);
  } catch (error) {
    if (error instanceof ZodError) return error.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
    throw error;
  }
  return [];
}

const v3 = (user: Record<string, unknown>) => ({
  targets: [{ host: "nms.lan", version: "3", user: { name: "ops", ...user } }],
});

describe("snmp config", () => {
  it("fills the defaults a v2c target needs", () => {
    const snmp = snmpConfig({ targets: [{ host: "nms.lan" }] });
    expect(snmp).toMatchObject({ prototype_compat: "off", queue_size: 1000 });
    expect(snmp.enterprise_oid).toBeUndefined();
    expect(snmp.targets[0]).toMatchObject({
      port: 162,
      version: "2c",
      inform: false,
      retries: 2,
      timeout: 2000,
    });
  });

  it("defaults a v3 user to authPriv with SHA and AES, and normalises the engine id", () => {
    const snmp = snmpConfig(
      v3({ auth_key: "12345678", priv_key: "abcdefgh", engine_id: "0x80001F8880AABB" }),
    );
    expect(snmp.targets[0]?.user).toMatchObject({
      level: "authPriv",
      auth_protocol: "sha",
      priv_protocol: "aes",
      engine_id: "80001f8880aabb",
    });
  });

  it('takes an unquoted YAML `version: 3` as "3" and rejects other versions', () => {
    const snmp = snmpConfig({
      targets: [{ host: "a", version: 3, user: { name: "ops", auth_key: "12345678", priv_key: "12345678" } }],
    });
    expect(snmp.targets[0]?.version).toBe("3");
    expect(issues({ targets: [{ host: "a", version: 1 }] })[0]).toMatch(/^snmp\.targets\.0\.version: /);
  });

  it("says which USM key is too short, without echoing it", () => {
    const found = issues(v3({ auth_key: "short", priv_key: "also" }));
    expect(found).toEqual([
      "snmp.targets.0.user.auth_key: must be at least 8 characters (RFC 3414)",
      "snmp.targets.0.user.priv_key: must be at least 8 characters (RFC 3414)",
    ]);
    expect(found.join()).not.toContain("short");
  });

  it("rejects credentials of the wrong version", () => {
    expect(
      issues({ targets: [{ host: "a", user: { name: "x", auth_key: "12345678", priv_key: "12345678" } }] }),
    ).toEqual(['snmp.targets.0.user: only for version "3"']);
    expect(
      issues({
        targets: [
          { host: "a", version: "3", community: "public", user: { name: "x", level: "noAuthNoPriv" } },
        ],
      }),
    ).toEqual(['snmp.targets.0.community: only for version "2c"']);
  });

  it("asks for names when two targets share host and port", () => {
    expect(issues({ targets: [{ host: "a" }, { host: "a", inform: true }] })).toEqual([
      'snmp.targets.1.name: "a:162" is also targets[0]; give each target a distinct name',
    ]);
    expect(
      issues({
        targets: [
          { host: "a", name: "a-trap" },
          { host: "a", name: "a-inform", inform: true },
        ],
      }),
    ).toEqual([]);
  });

  it("accepts roots under enterprises with 32-bit sub-identifiers only", () => {
    expect(issues({ targets: [{ host: "a" }], enterprise_oid: "1.3.6.1.4.1.99999.1" })).toEqual([]);
    expect(issues({ targets: [{ host: "a" }], enterprise_oid: "1.3.6.1.3.1" })[0]).toMatch(
      /^snmp\.enterprise_oid: expected an OID under 1\.3\.6\.1\.4\.1/,
    );
    expect(issues({ targets: [{ host: "a" }], enterprise_oid: "1.3.6.1.4.1.4294967296" })).toEqual([
      "snmp.enterprise_oid: every sub-identifier must be at most 4294967295",
    ]);
  });
});
