import { createHash, randomUUID } from "node:crypto";
import { EventEmitter } from "node:events";
import mqtt, { type IClientOptions, type MqttClient } from "mqtt";
import type { Logger } from "pino";
import type { Secret } from "../config/secret.js";
import type { BridgeStatus } from "../types.js";

export interface WatcherNode {
  id: string;
  /** Hosts by which bridge/info can name this node: its frontend.host override, its SSH host. */
  hosts: string[];
}

export interface WatcherOptions {
  url: string;
  username?: string;
  password?: Secret;
  baseTopic: string;
  clientId?: string;
  keepaliveMs: number;
  nodes: WatcherNode[];
  logger: Logger;
  /** Reconnect back-off bounds. */
  minReconnectMs?: number;
  maxReconnectMs?: number;
}

export interface BridgeResponse {
  status: "ok" | "error";
  data?: unknown;
  error?: string;
  transaction?: string;
}

export interface WatcherEvents {
  change: [BridgeStatus];
  /** bridge/state moved; `at` is when the controller saw it. */
  state: [{ state: "online" | "offline"; at: number; publishingNode: string | null }];
  broker: [{ connected: boolean; at: number }];
  /** Something zigbee2mqtt keeps in its data dir changed: devices, groups, joins, renames. */
  "data-changed": [{ topic: string; at: number }];
}

const DATA_EVENTS = new Set(["device_joined", "device_leave", "device_interview", "device_announce"]);

/**
 * Watches zigbee2mqtt over MQTT: bridge/state (JSON or the legacy plain text), bridge/info (which
 * node publishes, coordinator, network), bridge/health, and changes to devices and groups; sends
 * bridge requests and waits for their responses. Reconnects to the broker with back-off; a broker
 * outage is reported as such (broker_connected false), never as zigbee2mqtt being down.
 */
export class BridgeWatcher extends EventEmitter<WatcherEvents> {
  #client: MqttClient | undefined;
  #status: BridgeStatus = { broker_connected: false, state: "unknown", publishing_node: null };
  #health: { at: string; payload: unknown } | undefined;
  readonly #pending = new Map<string, (response: BridgeResponse) => void>();
  readonly #seenRetained = new Map<string, string>();
  /** zigbee2mqtt's own "online" payload as last seen (JSON in 2.x, plain text with legacy availability). */
  #onlinePayload = JSON.stringify({ state: "online" });
  #backoff: number;

  constructor(private readonly options: WatcherOptions) {
    super();
    this.#backoff = options.minReconnectMs ?? 1000;
  }

  status(): BridgeStatus {
    return structuredClone(this.#status);
  }

  health(): { at: string; payload: unknown } | undefined {
    return this.#health;
  }

  start(): void {
    const { options } = this;
    const clientOptions: IClientOptions = {
      clientId: options.clientId ?? `z2m-ha-${randomUUID().slice(0, 8)}`,
      keepalive: Math.max(1, Math.round(options.keepaliveMs / 1000)),
      reconnectPeriod: this.#backoff,
      connectTimeout: 10_000,
      clean: true,
      ...(options.username ? { username: options.username } : {}),
      ...(options.password ? { password: options.password.reveal() } : {}),
    };
    const client = mqtt.connect(options.url, clientOptions);
    this.#client = client;
    const base = options.baseTopic;
    client.on("connect", () => {
      this.#backoff = options.minReconnectMs ?? 1000;
      client.options.reconnectPeriod = this.#backoff;
      client.subscribe(
        [
          `${base}/bridge/state`,
          `${base}/bridge/info`,
          `${base}/bridge/health`,
          `${base}/bridge/devices`,
          `${base}/bridge/groups`,
          `${base}/bridge/event`,
          `${base}/bridge/response/#`,
        ],
        { qos: 1 },
      );
      this.#setBroker(true);
    });
    client.on("close", () => {
      if (this.#status.broker_connected) this.#setBroker(false);
      this.#backoff = Math.min(this.#backoff * 2, options.maxReconnectMs ?? 30_000);
      client.options.reconnectPeriod = this.#backoff;
    });
    client.on("error", (error) => options.logger.warn({ err: error.message }, "MQTT error"));
    client.on("message", (topic, payload, packet) => this.#onMessage(topic, payload, packet.retain));
  }

  async stop(): Promise<void> {
    const client = this.#client;
    this.#client = undefined;
    for (const resolve of this.#pending.values()) resolve({ status: "error", error: "watcher stopped" });
    this.#pending.clear();
    if (client) await client.endAsync(true);
  }

  /**
   * Sends `<base>/bridge/request/<name>` and waits for the matching response. Resolves with an
   * error response (never rejects) on timeout or when the broker is unreachable.
   */
  request(name: string, payload: Record<string, unknown>, timeoutMs: number): Promise<BridgeResponse> {
    const client = this.#client;
    if (!client?.connected)
      return Promise.resolve({ status: "error", error: "not connected to the MQTT broker" });
    const transaction = `z2mha-${randomUUID().slice(0, 12)}`;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#pending.delete(transaction);
        resolve({ status: "error", error: `no response to bridge/request/${name} within ${timeoutMs} ms` });
      }, timeoutMs);
      this.#pending.set(transaction, (response) => {
        clearTimeout(timer);
        this.#pending.delete(transaction);
        resolve(response);
      });
      client.publish(
        `${this.options.baseTopic}/bridge/request/${name}`,
        JSON.stringify({ ...payload, transaction }),
        { qos: 1 },
        (error) => {
          if (error) this.#pending.get(transaction)?.({ status: "error", error: error.message });
        },
      );
    });
  }

  /**
   * Publishes zigbee2mqtt's "online" bridge/state (retained), in the form zigbee2mqtt itself last
   * used. Only for a state the broker left stale: the last will of a zigbee2mqtt that is gone,
   * published after the one now running announced itself.
   */
  async republishOnline(): Promise<void> {
    const client = this.#client;
    if (!client?.connected) throw new Error("not connected to the MQTT broker");
    await client.publishAsync(`${this.options.baseTopic}/bridge/state`, this.#onlinePayload, {
      qos: 1,
      retain: true,
    });
  }

  #setBroker(connected: boolean): void {
    this.#status.broker_connected = connected;
    this.#status.changed_at = new Date().toISOString();
    this.emit("broker", { connected, at: Date.now() });
    this.emit("change", this.status());
  }

  nodeForHost(host: string | undefined): string | null {
    if (!host) return null;
    return this.options.nodes.find((n) => n.hosts.includes(host))?.id ?? null;
  }

  #onMessage(topic: string, payload: Buffer, retained: boolean): void {
    const suffix = topic.slice(this.options.baseTopic.length + 1);
    const text = payload.toString("utf8");
    switch (suffix) {
      case "bridge/state":
        this.#onState(text);
        return;
      case "bridge/info":
        this.#onInfo(text);
        return;
      case "bridge/health":
        this.#health = { at: new Date().toISOString(), payload: parseJson(text) ?? text };
        return;
      case "bridge/devices":
      case "bridge/groups":
        this.#onRetainedData(suffix, text, retained);
        return;
      case "bridge/event": {
        const type = (parseJson(text) as { type?: string } | undefined)?.type;
        if (type && DATA_EVENTS.has(type))
          this.emit("data-changed", { topic: `${suffix}:${type}`, at: Date.now() });
        return;
      }
    }
    if (suffix.startsWith("bridge/response/")) {
      const response = parseJson(text) as BridgeResponse | undefined;
      if (response?.transaction) this.#pending.get(response.transaction)?.(response);
      if (
        /^bridge\/response\/(device|group)\/(rename|remove|options)/.test(suffix) &&
        response?.status === "ok"
      ) {
        this.emit("data-changed", { topic: suffix, at: Date.now() });
      }
    }
  }

  #onState(text: string): void {
    const parsed = parseJson(text) as { state?: string } | undefined;
    const value = (parsed?.state ?? text).trim();
    if (value !== "online" && value !== "offline") return;
    if (value === "online") this.#onlinePayload = text;
    if (value === this.#status.state) return;
    this.#status.state = value;
    this.#status.changed_at = new Date().toISOString();
    this.emit("state", { state: value, at: Date.now(), publishingNode: this.#status.publishing_node });
    this.emit("change", this.status());
  }

  #onInfo(text: string): void {
    const info = parseJson(text) as
      | {
          version?: string;
          coordinator?: { ieee_address?: string };
          network?: { pan_id?: number; extended_pan_id?: string | number; channel?: number };
          config?: { frontend?: { host?: string } | boolean };
        }
      | undefined;
    if (!info) return;
    const frontend = typeof info.config?.frontend === "object" ? info.config.frontend.host : undefined;
    const next: BridgeStatus = {
      ...this.#status,
      publishing_node: this.nodeForHost(frontend),
      ...(frontend ? { frontend_host: frontend } : {}),
      ...(info.coordinator?.ieee_address
        ? { coordinator_ieee: info.coordinator.ieee_address.toLowerCase() }
        : {}),
      ...(info.version ? { version: info.version } : {}),
    };
    const net = info.network;
    if (
      net &&
      typeof net.pan_id === "number" &&
      typeof net.channel === "number" &&
      net.extended_pan_id !== undefined
    ) {
      const epid =
        typeof net.extended_pan_id === "number"
          ? `0x${net.extended_pan_id.toString(16).padStart(16, "0")}`
          : net.extended_pan_id.toLowerCase();
      next.network = { pan_id: net.pan_id, extended_pan_id: epid, channel: net.channel };
    }
    if (JSON.stringify(next) === JSON.stringify(this.#status)) return;
    next.changed_at = new Date().toISOString();
    this.#status = next;
    this.emit("change", this.status());
  }

  #onRetainedData(topic: string, text: string, retained: boolean): void {
    const hash = createHash("sha256").update(text).digest("hex");
    const previous = this.#seenRetained.get(topic);
    this.#seenRetained.set(topic, hash);
    // The retained copy delivered on subscribe is not a change; a new publication with other content is.
    if (previous === undefined && retained) return;
    if (previous !== hash) this.emit("data-changed", { topic, at: Date.now() });
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
