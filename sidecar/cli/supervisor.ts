/**
 * The few Home Assistant Supervisor API calls the add-on makes, with the SUPERVISOR_TOKEN the
 * Supervisor gives every add-on: the MQTT service (config.yaml `services: mqtt:want`), the
 * add-on's own hostname, and the discovery message that lets the integration's config flow offer
 * this sidecar without a URL or token being typed (config.yaml `discovery: [zigbee2mqtt_ha]`).
 */
import type { SupervisorMqtt } from "./addon-options.js";

export const DISCOVERY_SERVICE = "zigbee2mqtt_ha";

export interface DiscoveryConfig {
  url: string;
  token: string;
  instance_id: string;
}

export class SupervisorError extends Error {
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
    this.name = "SupervisorError";
  }
}

export class Supervisor {
  constructor(
    private readonly token: string,
    private readonly base = "http://supervisor",
  ) {}

  async #call<T>(method: "GET" | "POST", path: string, body?: unknown): Promise<T> {
    let response: Response;
    try {
      response = await fetch(`${this.base}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${this.token}`,
          ...(body !== undefined ? { "content-type": "application/json" } : {}),
        },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        signal: AbortSignal.timeout(10_000),
      });
    } catch (error) {
      throw new SupervisorError(`Supervisor ${method} ${path}: ${(error as Error).message}`);
    }
    const text = await response.text();
    let parsed: { result?: string; data?: T; message?: string } = {};
    try {
      parsed = text ? JSON.parse(text) : {};
    } catch {
      // Not JSON: reported below with the status.
    }
    if (!response.ok || parsed.result !== "ok")
      throw new SupervisorError(
        `Supervisor ${method} ${path}: ${response.status} ${parsed.message ?? text.slice(0, 200)}`,
        response.status,
      );
    return parsed.data as T;
  }

  /** The broker of the MQTT service (the Mosquitto add-on), or undefined when none is installed. */
  async mqtt(): Promise<SupervisorMqtt | undefined> {
    try {
      const data = await this.#call<{
        host: string;
        port: number | string;
        ssl?: boolean;
        username?: string;
        password?: string;
      }>("GET", "/services/mqtt");
      return {
        host: data.host,
        port: Number(data.port),
        ssl: data.ssl === true,
        ...(data.username ? { username: data.username } : {}),
        ...(data.password ? { password: data.password } : {}),
      };
    } catch (error) {
      // 400 "Service not available" when no add-on provides MQTT.
      if (error instanceof SupervisorError && error.status !== undefined && error.status < 500)
        return undefined;
      throw error;
    }
  }

  /** The add-on's hostname on the Supervisor's network, which Home Assistant resolves. */
  async hostname(): Promise<string> {
    const info = await this.#call<{ hostname: string }>("GET", "/addons/self/info");
    return info.hostname;
  }

  /** Announces the sidecar to Home Assistant; returns the discovery message's uuid. */
  async discover(config: DiscoveryConfig): Promise<string> {
    const data = await this.#call<{ uuid: string }>("POST", "/discovery", {
      service: DISCOVERY_SERVICE,
      config,
    });
    return data.uuid;
  }
}
