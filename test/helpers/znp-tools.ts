/**
 * Run the real zigpy-znp command-line tools (installed by scripts/setup/30-znp.sh) the way the
 * sidecar runs them on a node: `python3 -m zigpy_znp.tools.<tool> SERIAL ...`.
 */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";

export function z2mhaCache(): string {
  return process.env.Z2MHA_CACHE ?? "/var/cache/zigbee2mqtt-ha";
}

export function znpPython(): string {
  return join(z2mhaCache(), "znp-venv", "bin", "python3");
}

export function znpToolsInstalled(): boolean {
  return existsSync(znpPython());
}

export type ZnpTool = "nvram_read" | "nvram_write" | "nvram_reset" | "network_backup" | "network_restore";

export interface ToolRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  durationMs: number;
}

/** Run one tool to completion; never rejects for a non-zero exit (tests assert on `code`). */
export function runZnpTool(
  tool: ZnpTool,
  serial: string,
  args: string[] = [],
  timeoutMs = 60_000,
): Promise<ToolRun> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(znpPython(), ["-m", `zigpy_znp.tools.${tool}`, serial, ...args], {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, PYTHONUNBUFFERED: "1" },
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c: Buffer) => {
      stdout += c.toString();
    });
    child.stderr.on("data", (c: Buffer) => {
      stderr += c.toString();
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, durationMs: Date.now() - started });
    });
  });
}
