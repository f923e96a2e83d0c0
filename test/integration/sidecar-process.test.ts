import { spawn } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { stringify } from "yaml";
import type { OperationRecord } from "../../sidecar/types.js";
import {
  api,
  REPO,
  runCli,
  startSidecarProcess,
  unreachableNodes,
  writeTestConfig,
} from "../helpers/sidecar.js";

describe("config errors stop the process with exit code 2 and the field's path", () => {
  it.each([
    [
      "missing field",
      (n: Record<string, Record<string, unknown>>[]) => delete n[1]?.ssh?.host_key,
      "nodes[1].ssh.host_key: required",
    ],
    [
      "wrong type",
      (n: Record<string, Record<string, unknown>>[]) =>
        ((n[0] as Record<string, Record<string, unknown>>).ssh!.port = "x"),
      "nodes[0].ssh.port: expected number, got string",
    ],
    [
      "unknown key",
      (n: Record<string, Record<string, unknown>>[]) => ((n[0] as Record<string, unknown>).colour = "red"),
      "nodes[0].colour: unknown key",
    ],
    [
      "duplicate node id",
      (n: Record<string, Record<string, unknown>>[]) => ((n[1] as Record<string, unknown>).id = "node1"),
      'nodes[1].id: duplicate node id "node1"',
    ],
    [
      "bad duration",
      (n: Record<string, Record<string, unknown>>[]) =>
        ((n[0] as Record<string, Record<string, unknown>>).ssh!.connect_timeout = "10 sec"),
      'nodes[0].ssh.connect_timeout: bad duration "10 sec"',
    ],
  ])("%s", async (_name, mutate, expected) => {
    const config = await writeTestConfig();
    const nodes = unreachableNodes() as Record<string, Record<string, unknown>>[];
    mutate(nodes);
    writeFileSync(
      config.path,
      stringify({ state_dir: config.stateDir, mqtt: { url: "mqtt://127.0.0.1:1" }, nodes }),
    );
    const check = await runCli(["config", "check", config.path]);
    expect(check.code).toBe(2);
    expect(check.stderr).toContain(expected);
    const serve = await runCli(["serve"], { Z2MHA_CONFIG: config.path });
    expect(serve.code).toBe(2);
    expect(serve.stderr).toContain(expected);
  });

  it("a valid config checks out with exit 0", async () => {
    const config = await writeTestConfig();
    const check = await runCli(["config", "check", config.path]);
    expect(check).toMatchObject({ code: 0 });
    expect(check.stdout).toContain("ok (2 nodes: node1, node2)");
  });
});

describe("the sidecar process", () => {
  it("generates its token 0600 on first start, keeps it across restarts, and shuts down cleanly on SIGTERM", async () => {
    const config = await writeTestConfig();
    const first = await startSidecarProcess(config);
    const tokenPath = join(config.stateDir, "token");
    expect(statSync(tokenPath).mode & 0o777).toBe(0o600);
    expect(first.token.length).toBeGreaterThanOrEqual(32);
    expect(first.output()).not.toContain(first.token);
    const info = await api<{ instance_id: string }>(first, "GET", "/api/v1/info");
    expect(info.status).toBe(200);
    expect(await first.stop("SIGTERM")).toBe(0);
    expect(first.output()).toContain("sidecar stopped");

    const second = await startSidecarProcess(config);
    expect(second.token).toBe(first.token);
    expect((await api<{ instance_id: string }>(second, "GET", "/api/v1/info")).body.instance_id).toBe(
      info.body.instance_id,
    );
    expect(await second.stop()).toBe(0);
  });

  it("binds 127.0.0.1 by default", async () => {
    const config = await writeTestConfig();
    const sidecar = await startSidecarProcess(config);
    try {
      expect(sidecar.output()).toMatch(/"address":"http:\/\/127\.0\.0\.1:\d+"/);
    } finally {
      await sidecar.stop();
    }
  });

  it("reports an operation cut short by SIGKILL as interrupted at the right step, with state files intact", async () => {
    const config = await writeTestConfig();
    mkdirSync(config.stateDir, { recursive: true });
    const worker = spawn(
      process.execPath,
      ["--import", "tsx", join(REPO, "test/fixtures/journaled-operation.ts"), config.stateDir],
      {
        cwd: REPO,
        stdio: ["ignore", "pipe", "inherit"],
      },
    );
    await new Promise<void>((resolve) => {
      worker.stdout.on("data", (d: Buffer) => d.toString().includes("IN-STEP-2") && resolve());
    });
    await new Promise((r) => setTimeout(r, 300));
    worker.kill("SIGKILL");
    await new Promise((r) => worker.on("exit", r));

    const state = JSON.parse(readFileSync(join(config.stateDir, "state.json"), "utf8"));
    expect(state).toMatchObject({ active: "node1", automation: { maintenance: true } });
    // The kill lands mid-write only sometimes; plant the temp file such a write leaves, so the
    // sweep at start is exercised on every run.
    writeFileSync(join(config.stateDir, `.state.json.${worker.pid}.0123abcd.tmp`), '{"active":');
    const sidecar = await startSidecarProcess(config);
    try {
      const { body } = await api<{ operations: OperationRecord[] }>(sidecar, "GET", "/api/v1/operations");
      const op = body.operations.find((o) => o.kind === "switchover");
      expect(op).toMatchObject({
        status: "interrupted",
        last_completed_step: "stop node1",
        error: { step: "copy NVRAM" },
        params: { from: "node1", to: "node2" },
      });
      expect(op?.steps.map((s) => [s.name, s.status])).toEqual([
        ["stop node1", "succeeded"],
        ["copy NVRAM", "interrupted"],
      ]);
      expect(sidecar.output()).toMatch(/was interrupted: the sidecar stopped during step \\"copy NVRAM\\"/);
      const status = await api<{ active: string; automation: { maintenance: boolean } }>(
        sidecar,
        "GET",
        "/api/v1/status",
      );
      expect(status.body).toMatchObject({ active: "node1", automation: { maintenance: true } });
      expect(readdirSync(config.stateDir).filter((f) => f.endsWith(".tmp"))).toEqual([]);
      expect(sidecar.output()).toMatch(/removed \d+ temp file\(s\) left by an earlier write cut short/);
    } finally {
      await sidecar.stop();
    }
  });
});

describe("the CLI against a running sidecar", () => {
  it("status, automation, operations: human and --json output, exit codes", async () => {
    const config = await writeTestConfig();
    const sidecar = await startSidecarProcess(config);
    try {
      const env = { Z2MHA_URL: sidecar.url, Z2MHA_TOKEN: sidecar.token };
      const status = await runCli(["status"], env);
      expect(status.code).toBe(0);
      expect(status.stdout).toMatch(/^active\s+\(none\)$/m);
      expect(status.stdout).toMatch(/^node1\s+standby/m);

      const json = await runCli(["status", "--json"], env);
      expect(JSON.parse(json.stdout)).toMatchObject({
        cluster_name: "zigbee2mqtt",
        nodes: [{ id: "node1" }, { id: "node2" }],
      });

      const maint = await runCli(["maintenance", "on"], env);
      expect(maint).toMatchObject({ code: 0 });
      expect(maint.stdout).toContain("maintenance on");
      const ops = await runCli(["operations", "--json"], env);
      const list = JSON.parse(ops.stdout) as OperationRecord[];
      expect(list[0]).toMatchObject({ kind: "decision", trigger: "api" });

      // URL and token can also come from the sidecar's own config file.
      const viaConfig = await runCli(["status", "--json", "--config", config.path]);
      expect(JSON.parse(viaConfig.stdout).automation.maintenance).toBe(true);

      const badToken = await runCli(["status"], { ...env, Z2MHA_TOKEN: "wrong-token-wrong-token" });
      expect(badToken.code).toBe(1);
      expect(badToken.stderr).toContain("401 unauthorized");

      const badNode = await runCli(["node", "node7"], env);
      expect(badNode.code).toBe(1);
      expect(badNode.stderr).toContain('no node "node7"');

      const usage = await runCli(["automation", "--maintenance", "maybe"], env);
      expect(usage.code).toBe(2);
    } finally {
      await sidecar.stop();
    }
    const down = await runCli(["status"], { Z2MHA_URL: sidecar.url, Z2MHA_TOKEN: sidecar.token });
    expect(down.code).toBe(3);
    expect(down.stderr).toContain("cannot reach the sidecar");
  });
});
