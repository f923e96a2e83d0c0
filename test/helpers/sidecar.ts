/**
 * Runs the real sidecar as a child process (`node dist/cli.js serve`) against a config written
 * for the test, and the real CLI against it. The integration project's global setup builds dist/.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { stringify } from "yaml";
import { freePort } from "./ports.js";

export const REPO = resolve(import.meta.dirname, "../..");
export const CLI = join(REPO, "dist/cli.js");
const FAKE_KEY = "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

/** Two nodes nobody listens for: enough for everything that does not need a node to answer. */
export function unreachableNodes(): Record<string, unknown>[] {
  return ["node1", "node2"].map((id, i) => ({
    id,
    ssh: {
      host: "127.0.0.1",
      port: 1 + i,
      user: "zigbee",
      private_key: "/nonexistent",
      host_key: FAKE_KEY,
      connect_timeout: "1s",
    },
    staging_dir: "/home/zigbee/zigbee2mqtt-ha",
    overrides: { "frontend.host": `192.0.2.${10 + i}` },
  }));
}

export interface TestConfig {
  dir: string;
  path: string;
  stateDir: string;
  port: number;
}

export async function writeTestConfig(extra: Record<string, unknown> = {}): Promise<TestConfig> {
  const dir = mkdtempSync(join(tmpdir(), "z2mha-test-"));
  const port = await freePort();
  const stateDir = join(dir, "state");
  const { server, ...rest } = extra as { server?: Record<string, unknown> };
  const config = {
    state_dir: stateDir,
    server: { host: "127.0.0.1", port, ...server },
    mqtt: { url: "mqtt://127.0.0.1:1" },
    nodes: unreachableNodes(),
    ...rest,
  };
  const path = join(dir, "config.yaml");
  writeFileSync(path, stringify(config));
  return { dir, path, stateDir, port };
}

export interface RunningSidecar {
  proc: ChildProcess;
  url: string;
  token: string;
  output(): string;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export async function startSidecarProcess(
  config: TestConfig,
  env: NodeJS.ProcessEnv = {},
): Promise<RunningSidecar> {
  const proc = spawn(process.execPath, [CLI, "serve", "--config", config.path], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  proc.stdout?.on("data", (d) => {
    output += d;
  });
  proc.stderr?.on("data", (d) => {
    output += d;
  });
  const exited = new Promise<number | null>((resolveExit) => proc.on("exit", (code) => resolveExit(code)));
  const url = `http://127.0.0.1:${config.port}`;
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`sidecar exited with ${proc.exitCode}:\n${output}`);
    try {
      const res = await fetch(`${url}/healthz`);
      if (res.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`sidecar did not come up:\n${output}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const token = readFileSync(join(config.stateDir, "token"), "utf8").trim();
  return {
    proc,
    url,
    token,
    output: () => output,
    stop: async (signal = "SIGTERM") => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      return exited;
    },
  };
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function runCli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  return new Promise((resolveRun) => {
    const proc = spawn(process.execPath, [CLI, ...args], {
      env: { ...process.env, Z2MHA_CONFIG: "", Z2MHA_URL: "", Z2MHA_TOKEN: "", Z2MHA_TOKEN_FILE: "", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    proc.stdout.on("data", (d) => {
      stdout += d;
    });
    proc.stderr.on("data", (d) => {
      stderr += d;
    });
    proc.on("exit", (code) => resolveRun({ code, stdout, stderr }));
  });
}

export async function api<T = unknown>(
  sidecar: Pick<RunningSidecar, "url" | "token">,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; body: T }> {
  const res = await fetch(`${sidecar.url}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${sidecar.token}`,
      ...(body !== undefined ? { "content-type": "application/json" } : {}),
    },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : undefined) as T };
}
