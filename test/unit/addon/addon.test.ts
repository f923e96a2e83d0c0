/**
 * The Home Assistant add-on without a Supervisor or a container runtime: its files against the
 * Supervisor's rules (supervisor-rules.ts), its options.json turned into sidecar configs that the
 * config parser (the one `z2m-ha config check` runs) accepts, bad options rejected by name.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import {
  AddonOptionsError,
  addonOptionsSchema,
  parseAddonOptions,
  renderAddonConfig,
} from "../../../sidecar/cli/addon-options.js";
import { parseConfig } from "../../../sidecar/config/load.js";
import {
  checkAddonConfig,
  checkBuildConfig,
  checkOptions,
  checkRepositoryConfig,
  checkSchemaElement,
  checkTranslations,
} from "./supervisor-rules.js";

const REPO = join(import.meta.dirname, "..", "..", "..");
const yamlOf = (path: string) => parse(readFileSync(join(REPO, path), "utf8"));
const config = yamlOf("addon/config.yaml") as Record<string, unknown>;
const KEY_A = `SHA256:${"a".repeat(43)}`;
const KEY_B = `SHA256:${"B".repeat(42)}0=`;

describe("the add-on's files against the Supervisor's rules", () => {
  it("config.yaml is accepted, discovery and MQTT declared, its version the package's", () => {
    expect(checkAddonConfig(config)).toEqual([]);
    expect(config.discovery).toEqual(["zigbee2mqtt_ha"]);
    expect(config.services).toEqual(["mqtt:want"]);
    expect(config.init).toBe(false);
    const pkg = JSON.parse(readFileSync(join(REPO, "package.json"), "utf8")) as { version: string };
    expect(config.version).toBe(pkg.version);
  });

  it("build.yaml, repository.yaml and the translations are accepted", () => {
    expect(checkBuildConfig(yamlOf("addon/build.yaml"), config.arch as string[])).toEqual([]);
    expect(checkRepositoryConfig(yamlOf("repository.yaml"))).toEqual([]);
    expect(checkTranslations(yamlOf("addon/translations/en.yaml"), config)).toEqual([]);
  });

  it("the rules reject what the Supervisor rejects (so the checks above can fail)", () => {
    const bad = {
      ...config,
      slug: "zigbee2mqtt ha",
      arch: ["amd64", "sparc"],
      watchdog: "http://localhost:8485/healthz",
      services: ["mqtt:maybe"],
      ports: { "8485": 70000 },
      timeout: 5,
      colour: "blue",
    };
    const problems = checkAddonConfig(bad);
    expect(problems).toEqual(
      expect.arrayContaining([
        'config.slug: "zigbee2mqtt ha" is not a slug',
        "config.arch[1]: expected one of aarch64, amd64, armhf, armv7, i386",
        'config.watchdog: "http://localhost:8485/healthz" is not http(s)|tcp://[HOST]:[PORT:n]...',
        'config.services[0]: "mqtt:maybe" is not mqtt|mysql:provide|want|need',
        "config.ports.8485: not a port 1-65535",
        "config.timeout: 10-300 seconds",
        "config.colour: not a key the Supervisor knows (it would drop it)",
      ]),
    );
    const { name: _name, ...noName } = config;
    expect(checkAddonConfig(noName)).toContain("config.name: required");
    expect(checkAddonConfig({ ...config, arch: ["armv7"] })).toContain(
      "config.arch: deprecated architectures armv7",
    );
    const schemaProblems: string[] = [];
    checkSchemaElement(
      { a: "string", b: [["str"]], c: "int(1,", d: ["str", "int"] },
      "schema",
      schemaProblems,
    );
    expect(schemaProblems).toEqual([
      'schema.a: unknown option type "string"',
      "schema.b[0]: a list may not directly contain another list",
      'schema.c: unknown option type "int(1,"',
      "schema.d: a list type holds exactly one element type",
    ]);
    expect(checkBuildConfig({ build_from: { amd64: "not an image!" } }, ["aarch64", "amd64"])).toEqual([
      'build.build_from.amd64: "not an image!" is not an image reference',
      "build.build_from.aarch64: no base image for an architecture of config.yaml",
    ]);
    expect(checkRepositoryConfig({ url: "nope" })).toEqual([
      "repository.name: required",
      "repository.url: not a URL",
    ]);
  });

  it("options are checked against the schema as the Supervisor does: missing, mistyped, not matching", () => {
    const schema = config.schema as Record<string, unknown>;
    expect(checkOptions(config.options as Record<string, unknown>, schema)).toEqual([]);
    const options: Record<string, unknown> = {
      ...(config.options as Record<string, unknown>),
      nodes: [
        { id: "Node 1", host: "a", host_key: "x" },
        { host: "b", host_key: KEY_A, port: 0 },
      ],
      log_level: "loud",
    };
    const { ssh_user: _user, ...withoutUser } = options;
    expect(checkOptions(withoutUser, schema)).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^options\.nodes\[0\]\.id: "Node 1" does not match/),
        expect.stringMatching(/^options\.nodes\[0\]\.host_key: "x" does not match/),
        "options.nodes[1].port: not a port 1-65535",
        "options.nodes[1].id: missing (not optional in the schema)",
        'options.log_level: "loud" is not one of fatal|error|warn|info|debug|trace',
        "options.ssh_user: missing (not optional in the schema)",
      ]),
    );
  });

  it("config.yaml's schema and the add-on's option parser know the same options", () => {
    const schema = config.schema as Record<string, unknown>;
    const shape = addonOptionsSchema.shape as Record<string, unknown>;
    expect(Object.keys(schema).sort()).toEqual(Object.keys(shape).sort());
    const nested = (key: string) => {
      const element = schema[key];
      return Object.keys((Array.isArray(element) ? element[0] : element) as Record<string, unknown>).sort();
    };
    const inner = (key: string): string[] => {
      let field = shape[key] as { def: Record<string, unknown> };
      // unwrap defaults/prefaults and arrays down to the object
      for (let i = 0; i < 5; i++) {
        const def = field.def as { type: string; innerType?: unknown; element?: unknown; shape?: object };
        if (def.type === "object") return Object.keys(def.shape ?? {}).sort();
        field = (def.innerType ?? def.element) as typeof field;
      }
      return [];
    };
    for (const key of ["nodes", "mqtt", "failover", "snmp_targets"])
      expect(nested(key), key).toEqual(inner(key));
  });
});

/** What the Supervisor would write to /data/options.json for a user's Configuration tab. */
const minimal = {
  cluster_name: "home",
  ssh_user: "zigbee",
  nodes: [
    { id: "node1", host: "192.168.1.21", host_key: KEY_A },
    { id: "node2", host: "192.168.1.22", host_key: KEY_B, service_manager: "systemd" },
  ],
  mqtt: {},
  sync_interval: "5m",
  failover: { automatic: true, grace: "30s" },
  log_level: "info",
  snmp_targets: [],
};
const context = { privateKey: "/data/ssh/id_ed25519", stateDir: "/data/state" };

describe("options.json → the sidecar's config", () => {
  it("minimal options with the Supervisor's broker: a config the parser accepts, defaults of docs/nodes.md", () => {
    const text = renderAddonConfig(parseAddonOptions(minimal), {
      ...context,
      supervisorMqtt: { host: "core-mosquitto", port: 1883, ssl: false, username: "addons", password: "pw" },
    });
    const parsed = parseConfig(text, "/data/config.yaml");
    expect(parsed.server).toMatchObject({ host: "0.0.0.0", port: 8485 });
    expect(parsed.state_dir).toBe("/data/state");
    expect(parsed.mqtt.url).toBe("mqtt://core-mosquitto:1883");
    expect(parsed.mqtt.username).toBe("addons");
    expect(parsed.mqtt.password?.reveal()).toBe("pw");
    const [node1, node2] = parsed.nodes;
    expect(node1?.ssh).toMatchObject({
      host: "192.168.1.21",
      port: 22,
      user: "zigbee",
      private_key: "/data/ssh/id_ed25519",
    });
    expect(node1?.coordinator.tools).toEqual(["python3", "-m", "zigpy_znp.tools"]);
    expect(node1?.service.start).toEqual(["sudo", "rc-service", "zigbee2mqtt", "start"]);
    expect(node1?.staging_dir).toBe("/home/zigbee/zigbee2mqtt-ha");
    expect(node1?.overrides).toEqual({ "frontend.host": "192.168.1.21", "serial.port": "/dev/ttyUSB0" });
    expect(node2?.service.status).toEqual(["systemctl", "is-active", "zigbee2mqtt"]);
    expect(node2?.ssh.host_key).toBe(KEY_B);
    expect(parsed.sync.interval).toBe(300_000);
    expect(parsed.snmp).toBeUndefined();
  });

  it("full options: own broker, per-node user/port/paths/tools, SNMP; the own broker wins over the Supervisor's", () => {
    const options = {
      ...minimal,
      cluster_name: "garden",
      nodes: [
        {
          id: "pi-a",
          host: "10.0.0.5",
          port: 2222,
          user: "z2m",
          host_key: KEY_A,
          data_dir: "/srv/z2m/data",
          coordinator_port: "/dev/serial/by-id/usb-dongle-a",
          tools: "/opt/zigpy-znp/bin/python3 -m zigpy_znp.tools",
          frontend_host: "pi-a.lan",
          priority: 10,
        },
        {
          id: "pi-b",
          host: "10.0.0.6",
          host_key: KEY_B,
          staging_dir: "/var/tmp/z2mha",
          service_manager: "openrc",
        },
      ],
      mqtt: { url: "mqtts://broker.lan:8883", username: "z2mha", password: "secret", base_topic: "z2m" },
      sync_interval: "90s",
      failover: { automatic: false, grace: "1m" },
      log_level: "debug",
      snmp_targets: [{ host: "192.168.1.50", community: "private" }],
    };
    const parsed = parseConfig(
      renderAddonConfig(parseAddonOptions(options), {
        ...context,
        supervisorMqtt: { host: "core-mosquitto", port: 1883, ssl: false },
      }),
    );
    expect(parsed.cluster_name).toBe("garden");
    expect(parsed.mqtt).toMatchObject({
      url: "mqtts://broker.lan:8883",
      username: "z2mha",
      base_topic: "z2m",
    });
    expect(parsed.nodes[0]).toMatchObject({
      id: "pi-a",
      priority: 10,
      ssh: { port: 2222, user: "z2m" },
      data_dir: "/srv/z2m/data",
      staging_dir: "/home/z2m/zigbee2mqtt-ha",
      coordinator: {
        port: "/dev/serial/by-id/usb-dongle-a",
        tools: ["/opt/zigpy-znp/bin/python3", "-m", "zigpy_znp.tools"],
      },
      overrides: { "frontend.host": "pi-a.lan", "serial.port": "/dev/serial/by-id/usb-dongle-a" },
    });
    expect(parsed.nodes[1]?.staging_dir).toBe("/var/tmp/z2mha");
    expect(parsed.failover).toMatchObject({ automatic: false, grace: 60_000 });
    expect(parsed.log_level).toBe("debug");
    expect(parsed.snmp?.targets[0]).toMatchObject({ host: "192.168.1.50", port: 162, version: "2c" });
    expect(parsed.snmp?.targets[0]?.community?.reveal()).toBe("private");
  });

  it("bad options are rejected with the option's name and what is wrong; nothing is rendered", () => {
    const problems = (raw: unknown) => {
      try {
        parseAddonOptions(raw);
      } catch (error) {
        expect(error).toBeInstanceOf(AddonOptionsError);
        expect((error as Error).message).toMatch(
          /^the add-on's options are not valid \(Configuration tab\):/,
        );
        return (error as AddonOptionsError).problems;
      }
      throw new Error("accepted");
    };
    // The add-on's own defaults: no nodes yet.
    expect(problems(config.options)).toEqual([
      "nodes: add at least two zigbee2mqtt nodes (Configuration tab, nodes)",
    ]);
    expect(
      problems({
        ...minimal,
        nodes: [
          { id: "node1", host: "a", host_key: "SHA256:short" },
          { id: "node1", host: " ", host_key: KEY_B, data_dir: "relative/dir" },
        ],
        sync_interval: "every 5 minutes",
        mqtt: { url: "http://broker" },
      }),
    ).toEqual([
      'nodes[0].host_key: expected the fingerprint "SHA256:…" that ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub prints on the node',
      "nodes[1].host: the node's address is required",
      "nodes[1].data_dir: must be an absolute path",
      "mqtt.url: expected mqtt://host:1883 or mqtts://host:8883",
      'sync_interval: bad duration "every 5 minutes" (use e.g. 30s, 5m, 1h)',
      'nodes[1].id: "node1" is also nodes[0]: give each node its own id',
    ]);
    expect(problems({ ...minimal, nodes: [minimal.nodes[0], { ...minimal.nodes[1], id: "node1" }] })).toEqual(
      ['nodes[1].id: "node1" is also nodes[0]: give each node its own id'],
    );
    expect(() => renderAddonConfig(parseAddonOptions(minimal), context)).toThrow(
      /mqtt.url: no broker: install the Mosquitto broker add-on/,
    );
  });
});
