import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { configWithSnmp } from "../../helpers/snmp-config.js";
import { REPO } from "../../helpers/snmp-mibs.js";

const ENV = {
  Z2MHA_SNMP_COMMUNITY: "community-from-env",
  Z2MHA_SNMP_AUTH: "auth-from-env",
  Z2MHA_SNMP_PRIV: "priv-from-env",
  A: "auth-from-env",
  P: "priv-from-env",
};

describe("docs/snmp.md", () => {
  beforeAll(() => Object.assign(process.env, ENV));
  afterAll(() => {
    for (const key of Object.keys(ENV)) delete process.env[key];
  });

  const text = readFileSync(join(REPO, "docs", "snmp.md"), "utf8");
  const examples = [...text.matchAll(/```yaml\n([\s\S]*?)```/g)]
    .map((m) => parse(m[1] as string) as Record<string, unknown>)
    .filter((doc) => doc && "snmp" in doc);

  it("has configuration examples", () => {
    expect(examples.length).toBeGreaterThanOrEqual(4);
  });

  it.each(examples.map((doc, i) => [i, doc] as const))("example %i is a valid configuration", (_i, doc) => {
    const { snmp, ...rest } = doc;
    expect(configWithSnmp(snmp, rest).snmp?.targets.length).toBeGreaterThan(0);
  });
});
