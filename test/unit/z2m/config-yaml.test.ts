import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { applyOverrides, ConfigYamlError, readSetting } from "../../../sidecar/z2m/config-yaml.js";

const NODE1 = `# zigbee2mqtt on node1 — edited by hand, keep the comments!
version: 4
homeassistant:
  enabled: false
mqtt:
  base_topic: zigbee2mqtt   # default topic
  server: "mqtt://10.231.0.1:1883"
serial:
  port: /dev/serial/by-id/usb-ITead_Sonoff_Zigbee_3.0_USB_Dongle_Plus_node1-if00-port0  # node1's stick
  adapter: zstack
frontend:
  enabled: true
  host: 10.231.0.11   # this node only
  port: 8080
advanced:
  network_key: [1, 3, 5, 7, 9, 11, 13, 15, 0, 2, 4, 6, 8, 10, 12, 13]
  pan_id: 6754
devices:
  '0x00124b0012345678':
    friendly_name: Kitchen light   # renamed in the UI
`;

describe("per-node overrides in configuration.yaml", () => {
  it("changes only the overridden values; every other byte, comments included, stays", () => {
    const out = applyOverrides(NODE1, {
      "frontend.host": "10.231.0.12",
      "serial.port": "/dev/serial/by-id/usb-ITead_Sonoff_Zigbee_3.0_USB_Dongle_Plus_node2-if00-port0",
    });
    expect(out).toBe(
      NODE1.replace("host: 10.231.0.11", "host: 10.231.0.12").replace("Plus_node1-if00", "Plus_node2-if00"),
    );
    expect(out).toContain("# node1's stick");
    expect(out).toContain("   # this node only");
  });

  it("keeps quoting style, and quotes strings that would otherwise change type", () => {
    expect(applyOverrides('frontend:\n  host: "10.0.0.1" # x\n', { "frontend.host": "10.0.0.2" })).toBe(
      'frontend:\n  host: "10.0.0.2" # x\n',
    );
    const out = applyOverrides("frontend:\n  host: a\n  port: 8080\n", {
      "frontend.host": "8080",
      "frontend.port": 9090,
    });
    expect(parse(out)).toEqual({ frontend: { host: "8080", port: 9090 } });
    expect(parse(applyOverrides("a:\n  b: x\n", { "a.b": "x: y # z" }))).toEqual({ a: { b: "x: y # z" } });
    expect(parse(applyOverrides("a:\n  b: x\n", { "a.b": true }))).toEqual({ a: { b: true } });
  });

  it("edits inside flow mappings too", () => {
    expect(
      applyOverrides("serial: {port: /dev/ttyUSB0, adapter: zstack}\n", {
        "serial.port": "tcp://10.0.0.5:6638",
      }),
    ).toBe("serial: {port: tcp://10.0.0.5:6638, adapter: zstack}\n");
  });

  it("adds missing paths, and turns the old `frontend: true` into a mapping", () => {
    const out = applyOverrides("# top\nfrontend: true\nmqtt:\n  server: x\n", {
      "frontend.host": "h1",
      "advanced.log_level": "warn",
    });
    expect(parse(out)).toEqual({
      frontend: { enabled: true, host: "h1" },
      mqtt: { server: "x" },
      advanced: { log_level: "warn" },
    });
    expect(out).toContain("# top");
  });

  it("refuses to write through a scalar and reports bad YAML without touching anything", () => {
    expect(() => applyOverrides("frontend: 8080\n", { "frontend.host": "h" })).toThrow(ConfigYamlError);
    expect(() => applyOverrides("a: [1\n", { "a.b": 1 })).toThrow(/not valid YAML/);
    expect(() => applyOverrides("- a\n- b\n", { "a.b": 1 })).toThrow(/mapping at the top level/);
  });

  it("reads settings by dotted path", () => {
    expect(readSetting(NODE1, "frontend.host")).toBe("10.231.0.11");
    expect(readSetting(NODE1, "nope.nope")).toBeUndefined();
  });
});
