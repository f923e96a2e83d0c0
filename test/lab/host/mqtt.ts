import { connectAsync, type MqttClient } from "mqtt";

export const BASE_TOPIC = "zigbee2mqtt";

export interface BridgeInfo {
  version?: string;
  coordinator?: { ieee_address?: string; type?: string };
  network?: { pan_id?: number; extended_pan_id?: string | number; channel?: number };
  config?: { frontend?: { host?: string; port?: number } } & Record<string, unknown>;
  [key: string]: unknown;
}

export interface BridgeSnapshot {
  state?: string;
  info?: BridgeInfo;
}

export function connectMqtt(url: string): Promise<MqttClient> {
  return connectAsync(url, {
    clientId: `z2mha-lab-${process.pid}-${Math.random().toString(16).slice(2, 8)}`,
    reconnectPeriod: 0,
    connectTimeout: 5_000,
  });
}

function parseState(payload: Buffer): string {
  const text = payload.toString("utf8");
  try {
    const parsed = JSON.parse(text) as { state?: string };
    return parsed.state ?? text;
  } catch {
    return text;
  }
}

/**
 * Watches bridge/state and bridge/info (retained values first, then live changes) until `accept`
 * says yes or `timeout` ms pass; returns what was seen and whether it was accepted.
 */
async function watchBridge(
  url: string,
  accept: (bridge: BridgeSnapshot) => boolean,
  timeout: number,
  baseTopic: string,
): Promise<{ accepted: boolean; seen: BridgeSnapshot }> {
  const client = await connectMqtt(url);
  const seen: BridgeSnapshot = {};
  try {
    return await new Promise((resolve, reject) => {
      const timer = setTimeout(() => resolve({ accepted: false, seen: { ...seen } }), timeout);
      client.on("message", (topic, payload) => {
        if (topic === `${baseTopic}/bridge/state`) seen.state = parseState(payload);
        if (topic === `${baseTopic}/bridge/info`) {
          try {
            seen.info = JSON.parse(payload.toString("utf8")) as BridgeInfo;
          } catch {
            // a malformed info is not one anybody waits for
          }
        }
        if (accept(seen)) {
          clearTimeout(timer);
          resolve({ accepted: true, seen: { ...seen } });
        }
      });
      client
        .subscribeAsync([`${baseTopic}/bridge/state`, `${baseTopic}/bridge/info`], { qos: 1 })
        .catch((error: Error) => {
          clearTimeout(timer);
          reject(error);
        });
    });
  } finally {
    await client.endAsync(true);
  }
}

export interface BridgeWaitOptions {
  timeout?: number;
  /** Named in the timeout error. */
  what?: string;
  baseTopic?: string;
}

/** Waits until bridge/state and bridge/info satisfy `accept`; the error on timeout says what was seen. */
export async function waitForBridge(
  url: string,
  accept: (bridge: BridgeSnapshot) => boolean,
  { timeout = 60_000, what = "the bridge", baseTopic = BASE_TOPIC }: BridgeWaitOptions = {},
): Promise<BridgeSnapshot> {
  const { accepted, seen } = await watchBridge(url, accept, timeout, baseTopic);
  if (!accepted)
    throw new Error(`timed out after ${timeout} ms waiting for ${what} (last seen: ${describe(seen)})`);
  return seen;
}

function describe(bridge: BridgeSnapshot): string {
  const host = bridge.info?.config?.frontend?.host;
  return `state=${bridge.state ?? "none"}, frontend host=${host ?? "none"}, coordinator=${bridge.info?.coordinator?.ieee_address ?? "none"}`;
}

/** The retained bridge/state and bridge/info as they are now (fields missing when nothing is retained). */
export async function readBridge(url: string, baseTopic = BASE_TOPIC): Promise<BridgeSnapshot> {
  const { seen } = await watchBridge(
    url,
    (b) => b.state !== undefined && b.info !== undefined,
    1_000,
    baseTopic,
  );
  return seen;
}
