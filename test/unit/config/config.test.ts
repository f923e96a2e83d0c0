import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { splitCommand } from "../../../sidecar/config/argv.js";
import { parseDuration } from "../../../sidecar/config/duration.js";
import { ConfigError, parseConfig } from "../../../sidecar/config/load.js";

const KEY = "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

function node(id: string, extra: Record<string, unknown> = {}) {
  return {
    id,
    ssh: { host: `${id}.lan`, user: "zigbee", private_key: "/data/id_ed25519", host_key: KEY },
    staging_dir: "/home/zigbee/zigbee2mqtt-ha",
    ...extra,
  };
}

function valid(): Record<string, unknown> {
  return { mqtt: { url: "mqtt://127.0.0.1:1883" }, nodes: [node("node1"), node("node2")] };
}

function problems(config: unknown): string[] {
  try {
    parseConfig(typeof config === "string" ? config : stringify(config));
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).problems;
  }
  throw new Error("config was accepted");
}

describe("config validation names the field that is wrong", () => {
  it("accepts the design's example and fills in defaults", () => {
    const config = parseConfig(stringify(valid()));
    expect(config.server).toEqual({
      host: "127.0.0.1",
      port: 8485,
      request_timeout: 10_000,
      idle_timeout: 60_000,
      max_connections: 64,
      max_event_clients: 16,
      zeroconf: true,
    });
    expect(config.storage).toEqual({ min_free: 32 * 1024 * 1024, snapshots_max_bytes: 256 * 1024 * 1024 });
    expect(config.nodes[0]?.service.stop).toEqual(["sudo", "rc-service", "zigbee2mqtt", "stop"]);
    expect(config.nodes[0]?.coordinator.port).toBe("/dev/ttyUSB0");
    expect(config.sync.interval).toBe(300_000);
    expect(config.failover.grace).toBe(30_000);
    expect(config.snmp).toBeUndefined();
  });

  it("missing field", () => {
    const config = valid();
    delete (config.nodes as Record<string, Record<string, unknown>>[])[1]?.ssh?.host_key;
    expect(problems(config)).toEqual(["nodes[1].ssh.host_key: required"]);
  });

  it("wrong type", () => {
    const config = valid();
    ((config.nodes as Record<string, Record<string, unknown>>[])[0]?.ssh as Record<string, unknown>).port =
      "22";
    expect(problems(config)).toEqual(["nodes[0].ssh.port: expected number, got string"]);
  });

  it("unknown key, at any depth", () => {
    expect(problems({ ...valid(), colour: "blue" })).toEqual(["colour: unknown key"]);
    const config = valid();
    ((config.nodes as Record<string, Record<string, unknown>>[])[0]?.ssh as Record<string, unknown>).hostkey =
      KEY;
    expect(problems(config)).toEqual(["nodes[0].ssh.hostkey: unknown key"]);
  });

  it("duplicate node id", () => {
    expect(problems({ ...valid(), nodes: [node("node1"), node("node1")] })).toEqual([
      'nodes[1].id: duplicate node id "node1" (also nodes[0].id)',
    ]);
  });

  it("bad duration", () => {
    expect(problems({ ...valid(), sync: { interval: "5 minutes" } })).toEqual([
      'sync.interval: bad duration "5 minutes" (use e.g. 500ms, 30s, 5m, 1h)',
    ]);
  });

  it("bad switchover schedule (refused at load, not when the scheduler starts); five and six fields accepted", () => {
    expect(problems({ ...valid(), schedule: { switchover: "0 4 * * mon,funday" } })).toEqual([
      expect.stringMatching(/^schedule\.switchover: bad schedule "0 4 \* \* mon,funday": /),
    ]);
    expect(problems({ ...valid(), schedule: { switchover: "every tuesday" } })[0]).toMatch(
      /^schedule\.switchover: bad schedule/,
    );
    expect(parseConfig(stringify({ ...valid(), schedule: { switchover: "0 4 * * 1,4" } })).schedule).toEqual({
      switchover: "0 4 * * 1,4",
    });
    expect(
      parseConfig(stringify({ ...valid(), schedule: { switchover: "*/10 * * * * *" } })).schedule,
    ).toEqual({
      switchover: "*/10 * * * * *",
    });
  });

  it("reports every problem at once", () => {
    const found = problems({ mqtt: {}, nodes: [node("Node 1")], failover: { grace: "soon" } });
    expect(found).toContain("mqtt.url: required");
    expect(found.some((p) => p.startsWith("nodes[0].id: use 1-32 lowercase"))).toBe(true);
    expect(found).toContain("nodes: at least two nodes are needed for high availability");
    expect(found).toContain('failover.grace: bad duration "soon" (use e.g. 500ms, 30s, 5m, 1h)');
  });

  it("a host key that is not an OpenSSH fingerprint", () => {
    const config = valid();
    (
      (config.nodes as Record<string, Record<string, unknown>>[])[0]?.ssh as Record<string, unknown>
    ).host_key = "ssh-ed25519 AAAA";
    expect(problems(config)[0]).toMatch(/^nodes\[0\]\.ssh\.host_key: expected an OpenSSH fingerprint/);
  });

  it("shell operators in a command string are refused; the list form is accepted as is", () => {
    const config = valid();
    (config.nodes as Record<string, unknown>[])[0] = node("node1", {
      service: { start: "rc-service zigbee2mqtt start; reboot" },
    });
    expect(problems(config)).toEqual([
      'nodes[0].service.start: shell operator ";" is not allowed; use the list form',
    ]);
    (config.nodes as Record<string, unknown>[])[0] = node("node1", {
      service: { start: ["sh", "-c", "a; b"] },
    });
    expect(parseConfig(stringify(config)).nodes[0]?.service.start).toEqual(["sh", "-c", "a; b"]);
  });

  it("YAML syntax errors and duplicate keys name the line", () => {
    expect(problems("mqtt:\n  url: a\n  url: b\n")[0]).toMatch(/^YAML DUPLICATE_KEY at line 3/);
  });
});

describe("secrets", () => {
  it("come inline, from a file or from the environment, and never print", () => {
    const dir = mkdtempSync(join(tmpdir(), "z2mha-secret-"));
    writeFileSync(join(dir, "pw"), "file-password\n");
    process.env.Z2MHA_TEST_TOKEN = "env-token-value-123456";
    const config = parseConfig(
      stringify({
        ...valid(),
        mqtt: { url: "mqtt://x", username: "u", password: { file: join(dir, "pw") } },
        server: { token: { env: "Z2MHA_TEST_TOKEN" } },
      }),
    );
    expect(config.mqtt.password?.reveal()).toBe("file-password");
    expect(config.server.token?.reveal()).toBe("env-token-value-123456");
    const printed = JSON.stringify(config) + String(config.mqtt.password);
    expect(printed).not.toContain("file-password");
    expect(printed).not.toContain("env-token-value");
  });

  it("a missing secret file or variable is an error naming the field", () => {
    expect(problems({ ...valid(), server: { token: { env: "Z2MHA_SURELY_UNSET" } } })).toEqual([
      "server.token: environment variable Z2MHA_SURELY_UNSET is not set",
    ]);
    expect(
      problems({ ...valid(), mqtt: { url: "mqtt://x", password: { file: "/nonexistent/pw" } } })[0],
    ).toMatch(/^mqtt\.password: cannot read secret file \/nonexistent\/pw/);
  });
});

describe("durations", () => {
  it.each([
    ["500ms", 500],
    ["30s", 30_000],
    ["5m", 300_000],
    ["1h30m", 5_400_000],
    ["2", 2000],
    [1.5, 1500],
  ])("%s", (input, ms) => expect(parseDuration(input)).toBe(ms));

  it.each(["", "5x", "m5", "-1s", "1h 30m"])("rejects %j", (input) =>
    expect(parseDuration(input)).toBeUndefined(),
  );
});

describe("command strings", () => {
  it("split like a shell would, quotes honoured", () => {
    expect(splitCommand(`sudo rc-service 'zig bee' "a \\"b\\"" c\\ d`)).toEqual({
      argv: ["sudo", "rc-service", "zig bee", 'a "b"', "c d"],
    });
  });
  it.each(["a | b", "a && b", "$(id)", "`id`", 'echo "$HOME"', "a > f", "'open"])("refuses %j", (input) => {
    expect(splitCommand(input)).toHaveProperty("error");
  });
});

describe("what a careless config cannot do (issue 12)", () => {
  const withNode = (extra: Record<string, unknown>) => ({
    ...valid(),
    nodes: [node("node1", extra), node("node2")],
  });

  it.each(["/", "/opt", "/etc", "/home"])(
    "data_dir %s is refused: the sidecar would walk and prune it",
    (dir) => {
      expect(problems(withNode({ data_dir: dir }))[0]).toMatch(/^nodes\[0\]\.data_dir: .*system directory/);
    },
  );

  it.each(["/opt/zigbee2mqtt/data/", "/opt/../etc", "/opt//zigbee2mqtt/data", "/opt/./data"])(
    "a data_dir that is not normalised (%s) is refused",
    (dir) => {
      expect(problems(withNode({ data_dir: dir }))[0]).toMatch(/^nodes\[0\]\.data_dir: must/);
    },
  );

  it("staging_dir inside data_dir, or data_dir inside staging_dir, is refused", () => {
    expect(problems(withNode({ data_dir: "/opt/z2m/data", staging_dir: "/opt/z2m/data/ha" }))).toEqual([
      expect.stringMatching(/^nodes\[0\]\.staging_dir: must not be inside data_dir/),
    ]);
    expect(problems(withNode({ data_dir: "/srv/ha/data", staging_dir: "/srv/ha" }))).toEqual([
      expect.stringMatching(/^nodes\[0\]\.data_dir: must not be inside staging_dir/),
    ]);
  });

  it("an inline API token shorter than 16 characters is refused", () => {
    expect(problems({ ...valid(), server: { token: "x" } })).toEqual([
      "server.token: must be at least 16 characters",
    ]);
    expect(
      parseConfig(stringify({ ...valid(), server: { token: "0123456789abcdef" } })).server.token?.reveal(),
    ).toBe("0123456789abcdef");
  });

  it("frame_counter_increment is bounded", () => {
    expect(problems({ ...valid(), failover: { frame_counter_increment: 2 ** 31 } })[0]).toMatch(
      /^failover\.frame_counter_increment: /,
    );
  });

  it("sizes take units", () => {
    const config = parseConfig(
      stringify({ ...valid(), storage: { min_free: "8MiB", snapshots_max_bytes: "1GB" } }),
    );
    expect(config.storage).toEqual({ min_free: 8 * 1024 * 1024, snapshots_max_bytes: 1e9 });
    expect(problems({ ...valid(), storage: { min_free: "lots" } })[0]).toMatch(
      /^storage\.min_free: bad size/,
    );
  });

  it("TLS: self_signed or both files", () => {
    expect(parseConfig(stringify({ ...valid(), server: { tls: "self_signed" } })).server.tls).toBe(
      "self_signed",
    );
    expect(problems({ ...valid(), server: { tls: { cert: "/c.pem" } } })[0]).toMatch(/^server\.tls/);
  });
});
