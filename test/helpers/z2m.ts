/**
 * Run the real zigbee2mqtt (installed by scripts/setup/40-z2m.sh) against a data dir, capture its
 * log, watch its MQTT topics, and stop it the way a service manager does (SIGINT).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createWriteStream, existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import mqtt, { type MqttClient } from "mqtt";
import { stringify } from "yaml";

export function z2mInstallDir(): string {
  return join(process.env.Z2MHA_CACHE ?? "/var/cache/zigbee2mqtt-ha", "zigbee2mqtt");
}

export function z2mEntryPoint(installDir = z2mInstallDir()): string {
  return join(installDir, "node_modules", "zigbee2mqtt", "index.js");
}

export function z2mInstalled(installDir = z2mInstallDir()): boolean {
  return existsSync(z2mEntryPoint(installDir));
}

export interface Z2mNetwork {
  panId: number;
  /** 8 bytes, as in configuration.yaml's advanced.ext_pan_id. */
  extPanId: number[];
  channel: number;
  /** 16 bytes, as in configuration.yaml's advanced.network_key. */
  networkKey: number[];
}

export interface Z2mSettingsInput {
  mqttUrl: string;
  /** serial.port: a device path or tcp://host:port. */
  serialPort: string;
  adapter?: string;
  network: Z2mNetwork;
  baseTopic?: string;
  logLevel?: "error" | "warning" | "info" | "debug";
  /** Merged over the generated settings (shallow per top-level key). */
  extra?: Record<string, unknown>;
}

/** A configuration.yaml object for a headless zigbee2mqtt (no frontend, no HA discovery). */
export function z2mSettings(input: Z2mSettingsInput): Record<string, unknown> {
  const base: Record<string, unknown> = {
    version: 5,
    homeassistant: { enabled: false },
    frontend: { enabled: false },
    mqtt: { base_topic: input.baseTopic ?? "zigbee2mqtt", server: input.mqttUrl },
    serial: { port: input.serialPort, adapter: input.adapter ?? "zstack" },
    advanced: {
      log_level: input.logLevel ?? "debug",
      log_output: ["console"],
      pan_id: input.network.panId,
      ext_pan_id: input.network.extPanId,
      channel: input.network.channel,
      network_key: input.network.networkKey,
    },
  };
  for (const [key, value] of Object.entries(input.extra ?? {})) {
    const current = base[key];
    base[key] =
      current && typeof current === "object" && value && typeof value === "object"
        ? { ...(current as object), ...(value as object) }
        : value;
  }
  return base;
}

export function writeZ2mConfiguration(dataDir: string, settings: Record<string, unknown>): void {
  mkdirSync(dataDir, { recursive: true });
  writeFileSync(join(dataDir, "configuration.yaml"), stringify(settings));
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: ANSI colour codes are control characters
const ANSI = /\u001b\[[0-9;]*m/g;

export interface Z2mStartOptions {
  dataDir: string;
  env?: Record<string, string>;
  installDir?: string;
  /** Also append the output here. */
  logPath?: string;
}

export interface Z2mExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export class Z2mProcess {
  private text = "";
  private readonly exited: Promise<Z2mExit>;
  private exitInfo: Z2mExit | undefined;
  private readonly listeners = new Set<() => void>();
  readonly startedAt = Date.now();

  private constructor(readonly child: ChildProcess) {
    // "close", not "exit": only then has everything it printed been read from its pipes, so a
    // failure message shows the lines that explain the exit code.
    this.exited = new Promise((resolve) => {
      child.once("close", (code, signal) => {
        this.exitInfo = { code, signal };
        for (const l of this.listeners) l();
        resolve(this.exitInfo);
      });
    });
  }

  static start(options: Z2mStartOptions): Z2mProcess {
    const installDir = options.installDir ?? z2mInstallDir();
    const child = spawn(process.execPath, [z2mEntryPoint(installDir)], {
      cwd: installDir,
      stdio: ["ignore", "pipe", "pipe"],
      env: {
        ...process.env,
        ZIGBEE2MQTT_DATA: options.dataDir,
        // Never start the onboarding web server, even for a data dir without configuration.yaml.
        Z2M_ONBOARD_NO_SERVER: "1",
        ...options.env,
      },
    });
    const proc = new Z2mProcess(child);
    const file = options.logPath ? createWriteStream(options.logPath, { flags: "a" }) : undefined;
    const onData = (chunk: Buffer) => {
      const s = chunk.toString().replace(ANSI, "");
      proc.text += s;
      file?.write(s);
      for (const l of proc.listeners) l();
    };
    child.stdout?.on("data", onData);
    child.stderr?.on("data", onData);
    child.once("close", () => file?.end());
    return proc;
  }

  /** Everything it printed so far, colour codes removed. */
  get output(): string {
    return this.text;
  }

  get exit(): Z2mExit | undefined {
    return this.exitInfo;
  }

  /** Resolve when the output matches; reject on timeout or if the process exits first. */
  waitForOutput(pattern: RegExp | string, timeoutMs = 60_000): Promise<RegExpMatchArray> {
    const re =
      typeof pattern === "string" ? new RegExp(pattern.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")) : pattern;
    return new Promise((resolve, reject) => {
      const check = () => {
        const m = this.text.match(re);
        if (m) {
          done();
          resolve(m);
        } else if (this.exitInfo) {
          done();
          reject(
            new Error(
              `zigbee2mqtt exited (${JSON.stringify(this.exitInfo)}) before printing ${re}\n${this.tail()}`,
            ),
          );
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`zigbee2mqtt did not print ${re} within ${timeoutMs} ms\n${this.tail()}`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        this.listeners.delete(check);
      };
      this.listeners.add(check);
      check();
    });
  }

  async waitForExit(timeoutMs = 60_000): Promise<Z2mExit> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`zigbee2mqtt still running after ${timeoutMs} ms\n${this.tail()}`)),
        timeoutMs,
      );
    });
    try {
      return await Promise.race([this.exited, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** SIGINT, as systemd/OpenRC stop it; resolves with the exit and how long the stop took. */
  async stop(timeoutMs = 20_000): Promise<Z2mExit & { durationMs: number }> {
    const started = Date.now();
    if (!this.exitInfo) this.child.kill("SIGINT");
    try {
      const exit = await this.waitForExit(timeoutMs);
      return { ...exit, durationMs: Date.now() - started };
    } catch (error) {
      this.child.kill("SIGKILL");
      await this.exited;
      throw error;
    }
  }

  async kill(): Promise<void> {
    if (!this.exitInfo) this.child.kill("SIGKILL");
    await this.exited;
  }

  tail(lines = 40): string {
    return this.text.split("\n").slice(-lines).join("\n");
  }
}

export interface MqttMessage {
  topic: string;
  payload: string;
  retain: boolean;
  at: number;
}

/** Subscribes to topics and records every message, so tests can wait for what zigbee2mqtt publishes. */
export class MqttWatcher {
  readonly messages: MqttMessage[] = [];
  private readonly listeners = new Set<() => void>();

  private constructor(readonly client: MqttClient) {
    client.on("message", (topic, payload, packet) => {
      this.messages.push({ topic, payload: payload.toString(), retain: packet.retain, at: Date.now() });
      for (const l of this.listeners) l();
    });
  }

  static async connect(url: string, topics: string[]): Promise<MqttWatcher> {
    const client = await mqtt.connectAsync(url, { reconnectPeriod: 500 });
    const watcher = new MqttWatcher(client);
    await client.subscribeAsync(topics, { qos: 1 });
    return watcher;
  }

  /**
   * First message on `topic` matching `predicate`, received at or after `since` (ms timestamp).
   * Retained messages replayed at subscription are skipped unless `includeRetained`.
   */
  waitFor(
    topic: string,
    predicate: (payload: string) => boolean = () => true,
    options: { timeoutMs?: number; since?: number; includeRetained?: boolean } = {},
  ): Promise<MqttMessage> {
    const since = options.since ?? 0;
    return new Promise((resolve, reject) => {
      const check = () => {
        const m = this.messages.find(
          (msg) =>
            msg.topic === topic &&
            msg.at >= since &&
            (options.includeRetained || !msg.retain) &&
            predicate(msg.payload),
        );
        if (m) {
          done();
          resolve(m);
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`no matching message on ${topic} within ${options.timeoutMs ?? 60_000} ms`));
      }, options.timeoutMs ?? 60_000);
      const done = () => {
        clearTimeout(timer);
        this.listeners.delete(check);
      };
      this.listeners.add(check);
      check();
    });
  }

  /** Wait for zigbee2mqtt's `bridge/state` to become `state` (JSON payload, 2.x format). */
  waitForBridgeState(
    state: "online" | "offline",
    options: { baseTopic?: string; timeoutMs?: number; since?: number } = {},
  ): Promise<MqttMessage> {
    return this.waitFor(
      `${options.baseTopic ?? "zigbee2mqtt"}/bridge/state`,
      (p) => parseJson(p)?.state === state,
      options,
    );
  }

  /** Publish `bridge/request/<name>` and wait for the `bridge/response/<name>` with our transaction id. */
  async bridgeRequest(
    name: string,
    payload: Record<string, unknown> = {},
    options: { baseTopic?: string; timeoutMs?: number } = {},
  ): Promise<{ status: string; data?: unknown; error?: string; transaction?: string }> {
    const base = options.baseTopic ?? "zigbee2mqtt";
    const transaction = `t${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`;
    const since = Date.now();
    const response = this.waitFor(
      `${base}/bridge/response/${name}`,
      (p) => parseJson(p)?.transaction === transaction,
      { since, timeoutMs: options.timeoutMs },
    );
    await this.client.publishAsync(
      `${base}/bridge/request/${name}`,
      JSON.stringify({ ...payload, transaction }),
    );
    return JSON.parse((await response).payload);
  }

  latest(topic: string): MqttMessage | undefined {
    for (let i = this.messages.length - 1; i >= 0; i--)
      if (this.messages[i]!.topic === topic) return this.messages[i];
    return undefined;
  }

  async close(): Promise<void> {
    await this.client.endAsync(true);
  }
}

function parseJson(text: string): Record<string, unknown> | undefined {
  try {
    const v = JSON.parse(text);
    return v && typeof v === "object" ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}
