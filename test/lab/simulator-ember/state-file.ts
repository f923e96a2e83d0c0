/**
 * The dongle's flash on disk: what survives a reset or a pulled stick. On an EFR32 that is the
 * factory EUI64 (device information page, never writable), the manufacturing tokens in the
 * USERDATA page (CUSTOM_EUI_64 among them: writable once, since flash bits only go from 1 to 0
 * without a page erase), and the NVM3 stack tokens (network parameters, keys, the outgoing NWK frame
 * counter, the link key table). Plus one lab fact that is not on the chip: the highest NWK frame
 * counter the dongle ever used. Read and written with the Z-Stack simulator's helpers.
 */
import { readStateFile } from "../simulator/state-file.js";

export const STATE_FORMAT = "zigbee2mqtt-ha/ember-simulator-state";

/** NVM3 stack tokens of a joined node (what networkInit brings back after a reset). */
export interface NetworkTokens {
  nodeType: number;
  nodeId: number;
  panId: number;
  /** The 8 bytes exactly as the host gave them in formNetwork (hex, in that order). */
  extendedPanId: string;
  channel: number;
  radioTxPower: number;
  joinMethod: number;
  nwkManagerId: number;
  nwkUpdateId: number;
  channels: number;
  /** hex, 16 bytes */
  networkKey: string;
  networkKeySequence: number;
  /** The trust-centre link key (the preconfigured key of the initial security state), hex. */
  tcLinkKey: string;
  securityBitmask: number;
  extendedSecurityBitmask: number;
}

export interface KeyTableEntry {
  /** MSB first */
  eui64: string;
  /** hex */
  key: string;
}

export interface Tokens {
  /** MFG_CUSTOM_EUI_64, MSB first; null while blank (all 0xFF). */
  customEui64: string | null;
  network: NetworkTokens | null;
  /** The outgoing NWK frame counter (NVM3 keeps it across resets and leaves). */
  nwkFrameCounter: number;
  keyTable: (KeyTableEntry | null)[];
}

export interface EmberState {
  /** Factory EUI64, MSB first. */
  factoryEui64: string;
  maxNwkFrameCounter: number;
  tokens: Tokens;
}

export function blankTokens(): Tokens {
  return { customEui64: null, network: null, nwkFrameCounter: 0, keyTable: [] };
}

const HEX16 = /^[0-9a-f]{16}$/;
const HEX32 = /^[0-9a-f]{32}$/;

function uint(value: unknown, name: string, max: number): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < 0 || value > max)
    throw new Error(`${name} must be an integer from 0 to ${max}`);
  return value;
}

function hex(value: unknown, name: string, re: RegExp): string {
  if (typeof value !== "string" || !re.test(value)) throw new Error(`${name} must match ${re}`);
  return value;
}

function parseNetwork(value: unknown): NetworkTokens | null {
  if (value === null) return null;
  if (typeof value !== "object" || value === undefined)
    throw new Error("tokens.network must be an object or null");
  const n = value as Record<string, unknown>;
  return {
    nodeType: uint(n.nodeType, "network.nodeType", 0xff),
    nodeId: uint(n.nodeId, "network.nodeId", 0xffff),
    panId: uint(n.panId, "network.panId", 0xffff),
    extendedPanId: hex(n.extendedPanId, "network.extendedPanId", HEX16),
    channel: uint(n.channel, "network.channel", 26),
    radioTxPower: uint(n.radioTxPower, "network.radioTxPower", 0xff),
    joinMethod: uint(n.joinMethod, "network.joinMethod", 0xff),
    nwkManagerId: uint(n.nwkManagerId, "network.nwkManagerId", 0xffff),
    nwkUpdateId: uint(n.nwkUpdateId, "network.nwkUpdateId", 0xff),
    channels: uint(n.channels, "network.channels", 0xffffffff),
    networkKey: hex(n.networkKey, "network.networkKey", HEX32),
    networkKeySequence: uint(n.networkKeySequence, "network.networkKeySequence", 0xff),
    tcLinkKey: hex(n.tcLinkKey, "network.tcLinkKey", HEX32),
    securityBitmask: uint(n.securityBitmask, "network.securityBitmask", 0xffff),
    extendedSecurityBitmask: uint(n.extendedSecurityBitmask, "network.extendedSecurityBitmask", 0xffff),
  };
}

export function loadState(path: string): EmberState | undefined {
  const json = readStateFile(path, STATE_FORMAT);
  if (!json) return undefined;
  try {
    const t = json.tokens as Record<string, unknown> | undefined;
    if (!t || typeof t !== "object") throw new Error("tokens missing");
    if (!Array.isArray(t.key_table)) throw new Error("tokens.key_table must be an array");
    return {
      factoryEui64: hex(json.factory_eui64, "factory_eui64", HEX16),
      maxNwkFrameCounter: uint(json.max_nwk_frame_counter, "max_nwk_frame_counter", 0xffffffff),
      tokens: {
        customEui64: t.custom_eui64 === null ? null : hex(t.custom_eui64, "tokens.custom_eui64", HEX16),
        network: parseNetwork(t.network),
        nwkFrameCounter: uint(t.nwk_frame_counter, "tokens.nwk_frame_counter", 0xffffffff),
        keyTable: (t.key_table as unknown[]).map((entry, i) => {
          if (entry === null) return null;
          const e = entry as Record<string, unknown>;
          return {
            eui64: hex(e.eui64, `key_table[${i}].eui64`, HEX16),
            key: hex(e.key, `key_table[${i}].key`, HEX32),
          };
        }),
      },
    };
  } catch (error) {
    throw new Error(`state file ${path}: ${(error as Error).message}`);
  }
}

export function serializeState(state: EmberState): string {
  return `${JSON.stringify(
    {
      format: STATE_FORMAT,
      version: 1,
      factory_eui64: state.factoryEui64,
      max_nwk_frame_counter: state.maxNwkFrameCounter,
      tokens: {
        custom_eui64: state.tokens.customEui64,
        nwk_frame_counter: state.tokens.nwkFrameCounter,
        network: state.tokens.network,
        key_table: state.tokens.keyTable,
      },
    },
    null,
    1,
  )}\n`;
}
