/**
 * The lab's pure parts: names and addresses derived from an instance name, the files that make a
 * node look like the prototype's, config overrides. Wrong here means a lab that lies.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { sudoersRule } from "../../sidecar/node/service-manager.js";
import { overlaps, parseCidr } from "./host/addressing.js";
import { groupWithZigbee, passwdWithZigbee, shadowFor, z2mConfiguration } from "./host/files.js";
import {
  candidateLinkLocal,
  candidateSubnet,
  checkLabName,
  hostAddress,
  networkSettings,
} from "./host/naming.js";
import { docBlock, NODES_DOC } from "./host/node-setup.js";
import { tryRun } from "./host/run.js";
import { mergeConfig } from "./host/sidecar.js";

describe("names and addresses", () => {
  it("accepts short lowercase names only (they end up in 15-character interface names)", () => {
    expect(checkLabName("z2mha")).toBe("z2mha");
    for (const bad of ["", "Z2MHA", "1lab", "lab-1", "abcdefghijk", "a b", "../x"]) {
      expect(() => checkLabName(bad), bad).toThrow(/bad lab name/);
    }
  });

  it("derives a stable private /24 and link-local /30 from the name, different per name", () => {
    expect(candidateSubnet("z2mha", 0)).toBe(candidateSubnet("z2mha", 0));
    expect(candidateSubnet("z2mha", 0)).not.toBe(candidateSubnet("other", 0));
    expect(candidateSubnet("z2mha", 0)).not.toBe(candidateSubnet("z2mha", 1));
    for (let i = 0; i < 50; i++) {
      expect(candidateSubnet(`n${i}`, 0)).toMatch(/^10\.\d+\.\d+\.0$/);
      const k = candidateLinkLocal(`n${i}`, 0);
      expect(k).toBeGreaterThanOrEqual(1);
      expect(k).toBeLessThanOrEqual(254);
      expect(k).not.toBe(169);
    }
    expect(hostAddress("10.1.2.0", "controller")).toBe("10.1.2.1");
    expect(hostAddress("10.1.2.0", "node1")).toBe("10.1.2.11");
    expect(hostAddress("10.1.2.0", "node12")).toBe("10.1.2.22");
  });

  it("sees overlapping prefixes", () => {
    expect(overlaps(parseCidr("10.1.2.0/24"), parseCidr("10.0.0.0/8"))).toBe(true);
    expect(overlaps(parseCidr("10.1.2.0/24"), parseCidr("10.1.2.77"))).toBe(true);
    expect(overlaps(parseCidr("10.1.2.0/24"), parseCidr("10.1.3.0/24"))).toBe(false);
    expect(overlaps(parseCidr("169.254.7.0/30"), parseCidr("169.254.0.0/16"))).toBe(true);
    expect(overlaps(parseCidr("192.0.2.0/24"), parseCidr("0.0.0.0/0"))).toBe(true);
  });
});

describe("node files", () => {
  it("zigbee exists with dialout membership; no password hash of the machine is copied", () => {
    const passwd = passwdWithZigbee("root:x:0:0:root:/root:/bin/bash\n", 2000, 2000);
    expect(passwd).toContain("zigbee:x:2000:2000:zigbee2mqtt:/home/zigbee:/bin/sh\n");
    expect(groupWithZigbee("dialout:x:20:\nusers:x:100:\n", 2000)).toBe(
      "dialout:x:20:zigbee\nusers:x:100:\nzigbee:x:2000:\n",
    );
    expect(groupWithZigbee("dialout:x:20:alice\n", 2000)).toContain("dialout:x:20:alice,zigbee\n");
    expect(shadowFor(passwd)).toBe("root:*:19000:0:99999:7:::\nzigbee:*:19000:0:99999:7:::\n");
  });

  it("the lab's sudo rule is docs/nodes.md's block: the service commands only, as init and doctor write them", async () => {
    const block = docBlock("sudoers-openrc");
    const heredoc = /<<'EOF'\n([\s\S]*?)\nEOF\n/.exec(block)?.[1] ?? "";
    const rules = heredoc.split("\n").filter((line) => line && !line.startsWith("#"));
    expect(rules).toEqual([sudoersRule("zigbee", "openrc", "zigbee2mqtt")]);
    expect(rules[0]).toBe(
      "zigbee ALL=(root) NOPASSWD: /sbin/rc-service zigbee2mqtt start, /sbin/rc-service zigbee2mqtt stop, /sbin/rc-service zigbee2mqtt status",
    );
    expect(block).toMatch(/^cat >\/etc\/sudoers.d\/zigbee2mqtt-ha <<'EOF'\n/);
    expect(block).toContain("chmod 0440 /etc/sudoers.d/zigbee2mqtt-ha\n");
    // sudo's own parser accepts the rule (a syntax error would disable every rule in the file).
    const dir = mkdtempSync(join(tmpdir(), "z2mha-sudoers-"));
    try {
      writeFileSync(join(dir, "rule"), `${heredoc}\n`, { mode: 0o440 });
      const check = await tryRun(["visudo", "-c", "-f", join(dir, "rule")]);
      expect(check.code, check.stderr + check.stdout).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("docs/nodes.md's systemd rule (not run by the lab: no systemd there) is sudoersRule's and passes visudo -c", async () => {
    const doc = readFileSync(NODES_DOC, "utf8");
    const block = /<!-- sudoers-systemd -->\n```sh\n[\s\S]*?<<'EOF'\n([\s\S]*?)\nEOF\n/.exec(doc)?.[1] ?? "";
    expect(block.split("\n").filter((l) => l && !l.startsWith("#"))).toEqual([
      sudoersRule("zigbee", "systemd", "zigbee2mqtt"),
    ]);
    const dir = mkdtempSync(join(tmpdir(), "z2mha-sudoers-"));
    try {
      writeFileSync(join(dir, "rule"), `${block}\n`, { mode: 0o440 });
      const check = await tryRun(["visudo", "-c", "-f", join(dir, "rule")]);
      expect(check.code, check.stderr + check.stdout).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("a doc block is found by its marker only, once, and must be a sh block", () => {
    const doc = "x\n<!-- lab: a -->\n```sh\necho a\n```\n<!-- lab: b -->\ntext\n";
    expect(docBlock("a", doc)).toBe("echo a\n");
    expect(() => docBlock("b", doc)).toThrow(/not followed by a ```sh block/);
    expect(() => docBlock("c", doc)).toThrow(/no block/);
    expect(() => docBlock("a", `${doc}${doc}`)).toThrow(/twice/);
  });

  it("configuration.yaml: settings version 5, the node's own frontend host, the instance's network, comments", () => {
    const network = networkSettings("z2mha");
    const text = z2mConfiguration({
      lab: "z2mha",
      node: "node2",
      nodeAddress: "10.1.2.12",
      mqttServer: "mqtt://10.1.2.1:1883",
      network,
    });
    const config = parse(text) as Record<string, Record<string, unknown>>;
    expect(config.version).toBe(5);
    expect(config.frontend).toMatchObject({ enabled: true, host: "10.1.2.12", port: 8080 });
    expect(config.mqtt).toMatchObject({ server: "mqtt://10.1.2.1:1883", base_topic: "zigbee2mqtt" });
    expect(config.serial).toEqual({ port: "/dev/ttyUSB0", adapter: "zstack" });
    expect(config.advanced).toMatchObject({
      pan_id: network.panId,
      ext_pan_id: network.extendedPanId,
      network_key: network.networkKey,
      channel: network.channel,
    });
    expect(text.split("\n").filter((line) => line.trim().startsWith("#")).length).toBeGreaterThanOrEqual(5);
    expect(networkSettings("z2mha")).toEqual(network);
    expect(networkSettings("other")).not.toEqual(network);
  });
});

describe("sidecar config overrides", () => {
  const base = {
    server: { host: "a", port: 1 },
    nodes: [{ id: "node1", ssh: { port: 22, user: "zigbee" } }, { id: "node2" }],
  };

  it("merge objects deeply, replace other values, address nodes by id, and reject unknown nodes", () => {
    expect(mergeConfig(base, { server: { port: 2 } })).toMatchObject({ server: { host: "a", port: 2 } });
    expect(mergeConfig(base, { nodes: { node1: { ssh: { port: 2222 } } } })).toMatchObject({
      nodes: [{ id: "node1", ssh: { port: 2222, user: "zigbee" } }, { id: "node2" }],
    });
    expect(mergeConfig(base, { nodes: [{ id: "x" }] })).toMatchObject({ nodes: [{ id: "x" }] });
    expect(mergeConfig(base, { server: undefined })).not.toHaveProperty("server");
    expect(() => mergeConfig(base, { nodes: { node9: {} } })).toThrow(/no node node9/);
  });
});
