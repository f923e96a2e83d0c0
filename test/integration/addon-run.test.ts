/**
 * The add-on's entry point, `z2m-ha addon run` (what addon/rootfs/.../run execs), as the real CLI
 * process against a stand-in Supervisor API on loopback: SSH key made and shown, the broker taken
 * from the Supervisor's MQTT service, /data/config.yaml written, the sidecar serving, and the
 * discovery message Home Assistant's config flow reads: service zigbee2mqtt_ha with the add-on's
 * URL, the API token and the instance id. Bad options stop it with their names.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { freePort } from "../helpers/ports.js";

const CLI = resolve(import.meta.dirname, "..", "..", "dist", "cli.js");
const TOKEN = "supervisor-token-for-the-test";
const KEY = `SHA256:${"a".repeat(43)}`;

interface SupervisorCall {
  method: string;
  path: string;
  authorization: string | undefined;
  body: unknown;
}

async function fakeSupervisor(
  mqttPort: number,
  { failDiscovery = 0 } = {},
): Promise<{ url: string; calls: SupervisorCall[]; server: Server }> {
  const calls: SupervisorCall[] = [];
  let refused = 0;
  const server = createServer(async (req: IncomingMessage, res) => {
    let text = "";
    for await (const chunk of req) text += chunk;
    calls.push({
      method: req.method ?? "",
      path: req.url ?? "",
      authorization: req.headers.authorization,
      body: text ? JSON.parse(text) : undefined,
    });
    const reply = (status: number, body: unknown) => {
      res.writeHead(status, { "content-type": "application/json" });
      res.end(JSON.stringify(body));
    };
    if (req.headers.authorization !== `Bearer ${TOKEN}`)
      return reply(401, { result: "error", message: "no" });
    if (req.method === "GET" && req.url === "/services/mqtt")
      return reply(200, {
        result: "ok",
        data: { host: "127.0.0.1", port: mqttPort, ssl: false, username: "addons", password: "mqtt-pw" },
      });
    if (req.method === "GET" && req.url === "/addons/self/info")
      return reply(200, {
        result: "ok",
        data: { hostname: "a0d7b954-zigbee2mqtt-ha", slug: "zigbee2mqtt_ha" },
      });
    if (req.method === "POST" && req.url === "/discovery" && refused < failDiscovery) {
      refused++;
      return reply(503, { result: "error", message: "Home Assistant is starting" });
    }
    if (req.method === "POST" && req.url === "/discovery")
      return reply(200, { result: "ok", data: { uuid: "5f3b0a9c2f6c4f0e9d1d6c1e7b2a4c11" } });
    reply(404, { result: "error", message: "not here" });
  });
  await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  return { url: `http://127.0.0.1:${port}`, calls, server };
}

const options = (nodes: unknown[]) => ({
  cluster_name: "home",
  ssh_user: "zigbee",
  nodes,
  mqtt: {},
  sync_interval: "5m",
  failover: { automatic: false, grace: "30s" },
  log_level: "info",
  snmp_targets: [],
});

let child: ChildProcess | undefined;
let dir: string | undefined;
let supervisor: Server | undefined;

afterEach(async () => {
  if (child && child.exitCode === null) {
    const exited = new Promise((done) => child?.once("exit", done));
    child.kill("SIGTERM");
    await exited;
  }
  child = undefined;
  supervisor?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function start(data: string, port: number, supervisorUrl: string) {
  let output = "";
  child = spawn(process.execPath, [CLI, "addon", "run", "--data", data, "--port", String(port)], {
    env: { ...process.env, SUPERVISOR_TOKEN: TOKEN, Z2MHA_SUPERVISOR_URL: supervisorUrl },
    stdio: ["ignore", "pipe", "pipe"],
  });
  child.stdout?.on("data", (chunk) => (output += chunk));
  child.stderr?.on("data", (chunk) => (output += chunk));
  const exit = new Promise<number | null>((done) => child?.once("exit", (code) => done(code)));
  return { output: () => output, exit };
}

async function until<T>(what: string, probe: () => T | undefined, output: () => string): Promise<T> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}:\n${output()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe("z2m-ha addon run", () => {
  it("key, broker from the Supervisor, config in /data, the sidecar serving, discovery for Home Assistant", async () => {
    dir = mkdtempSync(join(tmpdir(), "z2mha-addon-"));
    const [port, mqttPort] = [await freePort(), await freePort()];
    const fake = await fakeSupervisor(mqttPort);
    supervisor = fake.server;
    // Nodes that do not answer: the add-on starts all the same (and says so in status).
    const [sshA, sshB] = [await freePort(), await freePort()];
    writeFileSync(
      join(dir, "options.json"),
      JSON.stringify(
        options([
          { id: "node1", host: "127.0.0.1", port: sshA, host_key: KEY },
          { id: "node2", host: "127.0.0.1", port: sshB, host_key: KEY },
        ]),
      ),
    );
    const run = start(dir, port, fake.url);
    const discovery = await until(
      "the discovery message",
      () => fake.calls.find((c) => c.method === "POST" && c.path === "/discovery"),
      run.output,
    );

    const token = readFileSync(join(dir, "state", "token"), "utf8").trim();
    const instanceId = readFileSync(join(dir, "state", "instance_id"), "utf8").trim();
    expect(discovery.body).toEqual({
      service: "zigbee2mqtt_ha",
      config: { url: `http://a0d7b954-zigbee2mqtt-ha:${port}`, token, instance_id: instanceId },
    });
    expect(fake.calls.every((c) => c.authorization === `Bearer ${TOKEN}`)).toBe(true);
    expect(fake.calls.map((c) => `${c.method} ${c.path}`)).toEqual([
      "GET /services/mqtt",
      "GET /addons/self/info",
      "POST /discovery",
    ]);

    // The token in the message is the API's: it opens the API the URL points at.
    const info = await fetch(`http://127.0.0.1:${port}/api/v1/info`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(info.status).toBe(200);
    expect(((await info.json()) as { instance_id: string }).instance_id).toBe(instanceId);
    expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);

    // The key, made on this first start, kept in /data, its public half in the log.
    const publicKey = readFileSync(join(dir, "ssh", "id_ed25519.pub"), "utf8").trim();
    expect(statSync(join(dir, "ssh", "id_ed25519")).mode & 0o777).toBe(0o600);
    expect(run.output()).toContain(`[zigbee2mqtt-ha] restrict ${publicKey}`);
    expect(run.output()).toContain("MQTT broker from the Supervisor: 127.0.0.1");
    // The config holds the broker's password: /data only, 0600.
    expect(statSync(join(dir, "config.yaml")).mode & 0o777).toBe(0o600);
    const config = parse(readFileSync(join(dir, "config.yaml"), "utf8"));
    expect(config.mqtt).toEqual({
      url: `mqtt://127.0.0.1:${mqttPort}`,
      username: "addons",
      password: "mqtt-pw",
      base_topic: "zigbee2mqtt",
    });
    expect(config.nodes[0].ssh.private_key).toBe(join(dir, "ssh", "id_ed25519"));
    expect(run.output()).not.toContain("mqtt-pw");
    expect(run.output()).not.toContain(token);

    child?.kill("SIGTERM");
    expect(await run.exit).toBe(0);
  });

  it("discovery refused at first (Home Assistant starting): retried while the sidecar serves", async () => {
    dir = mkdtempSync(join(tmpdir(), "z2mha-addon-"));
    const port = await freePort();
    const fake = await fakeSupervisor(await freePort(), { failDiscovery: 1 });
    supervisor = fake.server;
    writeFileSync(
      join(dir, "options.json"),
      JSON.stringify(
        options([
          { id: "node1", host: "127.0.0.1", port: await freePort(), host_key: KEY },
          { id: "node2", host: "127.0.0.1", port: await freePort(), host_key: KEY },
        ]),
      ),
    );
    const run = start(dir, port, fake.url);
    await until(
      "the first, refused discovery",
      () => fake.calls.find((c) => c.path === "/discovery"),
      run.output,
    );
    expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
    await until(
      "announced",
      () => (run.output().includes("announced to Home Assistant") ? true : undefined),
      run.output,
    );
    expect(fake.calls.filter((c) => c.path === "/discovery")).toHaveLength(2);
    expect(child?.exitCode).toBeNull();
  });

  it("addon render writes a config that z2m-ha config check accepts", async () => {
    dir = mkdtempSync(join(tmpdir(), "z2mha-addon-"));
    writeFileSync(
      join(dir, "options.json"),
      JSON.stringify({
        ...options([
          { id: "node1", host: "192.168.1.21", host_key: KEY },
          { id: "node2", host: "192.168.1.22", host_key: KEY, service_manager: "systemd" },
        ]),
        mqtt: { url: "mqtt://192.168.1.10:1883", username: "z2mha", password: "pw" },
      }),
    );
    const cli = (...args: string[]) =>
      new Promise<{ code: number | null; out: string }>((done) => {
        const p = spawn(process.execPath, [CLI, ...args], { stdio: ["ignore", "pipe", "pipe"] });
        let out = "";
        p.stdout.on("data", (c) => (out += c));
        p.stderr.on("data", (c) => (out += c));
        p.on("exit", (code) => done({ code, out }));
      });
    const rendered = await cli("addon", "render", "--data", dir);
    expect(rendered).toEqual({ code: 0, out: `wrote ${join(dir, "config.yaml")}\n` });
    const checked = await cli("config", "check", join(dir, "config.yaml"));
    expect(checked).toEqual({ code: 0, out: `${join(dir, "config.yaml")}: ok (2 nodes: node1, node2)\n` });
  });

  it("bad options: exit 2 naming each option, nothing served, no discovery", async () => {
    dir = mkdtempSync(join(tmpdir(), "z2mha-addon-"));
    const fake = await fakeSupervisor(1883);
    supervisor = fake.server;
    writeFileSync(
      join(dir, "options.json"),
      JSON.stringify(options([{ id: "node1", host: "n1", host_key: "SHA256:x" }])),
    );
    const run = start(dir, await freePort(), fake.url);
    expect(await run.exit).toBe(2);
    expect(run.output()).toContain("the add-on's options are not valid (Configuration tab):");
    expect(run.output()).toContain("nodes: add at least two zigbee2mqtt nodes");
    expect(run.output()).toContain('nodes[0].host_key: expected the fingerprint "SHA256:…"');
    expect(fake.calls.filter((c) => c.path === "/discovery")).toEqual([]);
  });
});
