/**
 * A private Mosquitto broker for one test file: loopback only, a free random port, a temporary
 * config, no persistence. Stop it when done.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface MosquittoBroker {
  host: string;
  port: number;
  /** mqtt://127.0.0.1:PORT */
  url: string;
  logPath: string;
  stop(): Promise<void>;
}

export function freePort(host = "127.0.0.1"): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, host, () => {
      const address = server.address();
      server.close(() => {
        if (address && typeof address === "object") resolve(address.port);
        else reject(new Error("no port"));
      });
    });
  });
}

function canConnect(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, host);
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

export interface MosquittoOptions {
  binary?: string;
  /** Extra lines appended to the generated mosquitto.conf. */
  extraConfig?: string[];
  startTimeoutMs?: number;
}

function listening(logPath: string, port: number): boolean {
  try {
    return readFileSync(logPath, "utf8").includes(`listen socket on port ${port}.`);
  } catch {
    return false;
  }
}

export async function startMosquitto(options: MosquittoOptions = {}): Promise<MosquittoBroker> {
  const host = "127.0.0.1";
  const dir = mkdtempSync(join(tmpdir(), "mosquitto-"));
  const logPath = join(dir, "mosquitto.log");
  let lastError: Error | undefined;
  // The free port can be taken between the probe and mosquitto's bind; try a few.
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort(host);
    const confPath = join(dir, "mosquitto.conf");
    writeFileSync(
      confPath,
      [
        `listener ${port} ${host}`,
        "allow_anonymous true",
        "persistence false",
        // mosquitto drops root privileges before opening log files; stderr always works.
        "log_dest stderr",
        "log_type error",
        "log_type warning",
        "log_type notice",
        // "information" carries the listen notice that proves the port is ours, and every connect.
        "log_type information",
        ...(options.extraConfig ?? []),
        "",
      ].join("\n"),
    );
    const logFd = openSync(logPath, "a");
    const child: ChildProcess = spawn(options.binary ?? "mosquitto", ["-c", confPath], {
      stdio: ["ignore", "ignore", logFd],
    });
    closeSync(logFd);
    let exited = false;
    child.once("exit", () => {
      exited = true;
    });
    const deadline = Date.now() + (options.startTimeoutMs ?? 5000);
    while (Date.now() < deadline && !exited) {
      // Someone else's server on the same port would accept the connection too: only our
      // broker's own "listen socket on port N" notice proves the port is ours.
      if (listening(logPath, port) && !exited && (await canConnect(host, port))) {
        return {
          host,
          port,
          url: `mqtt://${host}:${port}`,
          logPath,
          stop: async () => {
            if (child.exitCode === null && child.signalCode === null) {
              const done = new Promise<void>((resolve) => child.once("exit", () => resolve()));
              child.kill("SIGTERM");
              const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
              await done;
              clearTimeout(timer);
            }
            rmSync(dir, { recursive: true, force: true });
          },
        };
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    child.kill("SIGKILL");
    lastError = new Error(`mosquitto did not accept connections on ${host}:${port}`);
  }
  rmSync(dir, { recursive: true, force: true });
  throw lastError ?? new Error("mosquitto failed to start");
}
