/**
 * The NVRAM dump written by zigpy-znp's `nvram_read` (Z-Stack 3.x): `{"LEGACY": {"<item name>":
 * "<hex>"}, "<table name>": {"0x0000": "<hex>", ...}}`. Pure functions: validate a dump before it
 * is written to another dongle, read the network identity and the frame counter out of it, compare
 * a read-back with what was written, and raise frame counters for a restore from stale state.
 */

export type NvramDump = Record<string, Record<string, string>>;

export class NvramError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "NvramError";
  }
}

const HEX = /^([0-9a-f]{2})*$/;
/** Extended tables the Z-Stack 3.x firmware always has, even blank. */
const REQUIRED_TABLES = ["NWK_SEC_MATERIAL_TABLE", "TCLK_TABLE"];
const NWK_SEC_ENTRY_BYTES = 12;
const GENERIC_EPID = "ffffffffffffffff";

export interface NetworkIdentity {
  /** IEEE address as zigbee2mqtt shows it: 0x + 16 hex digits, most significant first. */
  ieee: string;
  pan_id: number;
  /** Extended PAN id as zigbee2mqtt shows it in bridge/info: 0x + 16 hex digits. */
  extended_pan_id: string;
  channel: number;
  /** The network key, hex, as stored. */
  network_key: string;
  /** The network frame counter the coordinator would resume with. */
  frame_counter: number;
  configured: boolean;
}

function bytes(hex: string): Buffer {
  return Buffer.from(hex, "hex");
}

function reversedHex(hex: string): string {
  return `0x${Buffer.from(hex, "hex").reverse().toString("hex")}`;
}

/** Parses and checks a dump; `requireNetwork` additionally demands a formed, configured network. */
export function parseNvram(text: string, options: { requireNetwork?: boolean } = {}): NvramDump {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new NvramError(`NVRAM dump is not JSON: ${(error as Error).message}`);
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw))
    throw new NvramError("NVRAM dump is not an object");
  const dump = raw as Record<string, unknown>;
  for (const [section, items] of Object.entries(dump)) {
    if (typeof items !== "object" || items === null || Array.isArray(items)) {
      throw new NvramError(`NVRAM section ${section} is not an object`);
    }
    for (const [key, value] of Object.entries(items as Record<string, unknown>)) {
      if (typeof value !== "string" || !HEX.test(value)) {
        throw new NvramError(`NVRAM item ${section}.${key} is not lowercase hex`);
      }
    }
  }
  const legacy = dump.LEGACY as Record<string, string> | undefined;
  if (!legacy) throw new NvramError("NVRAM dump has no LEGACY section");
  if (Object.keys(legacy).length < 10) {
    throw new NvramError(`NVRAM dump has only ${Object.keys(legacy).length} LEGACY items: not a full dump`);
  }
  for (const table of REQUIRED_TABLES) {
    if (!dump[table]) throw new NvramError(`NVRAM dump has no ${table} section (expected on Z-Stack 3.x)`);
  }
  if (!legacy.EXTADDR || bytes(legacy.EXTADDR).length !== 8)
    throw new NvramError("NVRAM dump has no valid EXTADDR");
  const parsed = dump as NvramDump;
  if (options.requireNetwork) {
    const identity = networkOf(parsed);
    if (!identity.configured)
      throw new NvramError("NVRAM dump holds no configured network (HAS_CONFIGURED_ZSTACK3 != 55)");
  }
  return parsed;
}

/** Network identity and frame counter from a dump. Throws when the dump holds no network. */
export function networkOf(dump: NvramDump): NetworkIdentity {
  const legacy = dump.LEGACY ?? {};
  const nibHex = legacy.NIB;
  if (!nibHex) throw new NvramError("NVRAM dump has no NIB: the dongle holds no network");
  const nib = bytes(nibHex);
  if (nib.length !== 110 && nib.length !== 116)
    throw new NvramError(`NIB has ${nib.length} bytes, expected 110 or 116`);
  const epidRaw = nib.subarray(57, 65).toString("hex");
  const key = legacy.NWKKEY ? bytes(legacy.NWKKEY).subarray(1, 17).toString("hex") : "";
  return {
    ieee: reversedHex(legacy.EXTADDR ?? ""),
    pan_id: nib.readUInt16LE(36),
    extended_pan_id: reversedHex(epidRaw),
    channel: nib[24] as number,
    network_key: key,
    frame_counter: frameCounterOf(dump),
    configured: legacy.HAS_CONFIGURED_ZSTACK3 === "55",
  };
}

/**
 * The network frame counter as the firmware would use it: the NWK_SEC_MATERIAL entry for the
 * network's extended PAN id, else the generic entry, else the copy in NWKKEY.
 */
export function frameCounterOf(dump: NvramDump): number {
  const table = dump.NWK_SEC_MATERIAL_TABLE ?? {};
  const nib = dump.LEGACY?.NIB ? bytes(dump.LEGACY.NIB) : undefined;
  const epid = nib && nib.length >= 65 ? nib.subarray(57, 65).toString("hex") : undefined;
  let generic: number | undefined;
  for (const hex of Object.values(table)) {
    const entry = bytes(hex);
    if (entry.length < NWK_SEC_ENTRY_BYTES) continue;
    const entryEpid = entry.subarray(4, 12).toString("hex");
    if (epid && entryEpid === epid) return entry.readUInt32LE(0);
    if (entryEpid === GENERIC_EPID) generic = entry.readUInt32LE(0);
  }
  if (generic !== undefined) return generic;
  const nwkKey = dump.LEGACY?.NWKKEY ? bytes(dump.LEGACY.NWKKEY) : undefined;
  return nwkKey && nwkKey.length >= 24 ? nwkKey.readUInt32LE(20) : 0;
}

/** The largest value a 32-bit frame counter holds. */
export const MAX_FRAME_COUNTER = 0xffff_ffff;

/**
 * A frame counter past 32 bits would wrap to a small number, and every device would drop the
 * coordinator's frames as replays: refuse instead. Such a network needs a new network key.
 */
export function checkCounter(value: number): void {
  if (!Number.isSafeInteger(value) || value < 0)
    throw new NvramError(`frame counter ${value} is not a non-negative integer`);
  if (value > MAX_FRAME_COUNTER)
    throw new NvramError(
      `frame counter ${value} does not fit in 32 bits: the network's frame counter is exhausted; it needs a new network key (zigbee2mqtt: a new network), a copy cannot resume it`,
    );
}

/**
 * Returns a copy of the dump whose network frame counters (every used NWK_SEC_MATERIAL entry and
 * the NWKKEY copy) are at least `minimum`. Never lowers a counter.
 */
export function raiseFrameCounter(dump: NvramDump, minimum: number): NvramDump {
  checkCounter(minimum);
  const copy = structuredClone(dump);
  const table = copy.NWK_SEC_MATERIAL_TABLE ?? {};
  for (const [index, hex] of Object.entries(table)) {
    const entry = bytes(hex);
    if (entry.length < NWK_SEC_ENTRY_BYTES || entry.subarray(4, 12).equals(Buffer.alloc(8))) continue;
    if (entry.readUInt32LE(0) < minimum) {
      entry.writeUInt32LE(minimum, 0);
      table[index] = entry.toString("hex");
    }
  }
  const legacy = copy.LEGACY;
  if (legacy?.NWKKEY) {
    const key = bytes(legacy.NWKKEY);
    if (key.length >= 24 && key.readUInt32LE(20) < minimum) {
      key.writeUInt32LE(minimum, 20);
      legacy.NWKKEY = key.toString("hex");
    }
  }
  return copy;
}

export interface NvramDifference {
  item: string;
  expected: string | undefined;
  actual: string | undefined;
}

/**
 * Every item of `expected` must read back identical in `actual`. Items only in `actual` are fine:
 * nvram_write never deletes, and a reset dongle has defaults the dump may not list.
 */
export function compareNvram(expected: NvramDump, actual: NvramDump): NvramDifference[] {
  const differences: NvramDifference[] = [];
  for (const [section, items] of Object.entries(expected)) {
    for (const [key, value] of Object.entries(items)) {
      const got = actual[section]?.[key];
      if (got !== value) differences.push({ item: `${section}.${key}`, expected: value, actual: got });
    }
  }
  return differences;
}

export function countItems(dump: NvramDump): number {
  return Object.values(dump).reduce((n, items) => n + Object.keys(items).length, 0);
}

/** The items of `after` whose value differs from (or is absent in) `before`: what nvram_write must write. */
export function changedItems(before: NvramDump, after: NvramDump): NvramDump {
  const changed: NvramDump = {};
  for (const [section, items] of Object.entries(after)) {
    for (const [key, value] of Object.entries(items)) {
      if (before[section]?.[key] !== value) changed[section] = { ...changed[section], [key]: value };
    }
  }
  return changed;
}

/**
 * zigpy-znp's own record of the NVRAM migrations it has run on a chip, written by its
 * network_restore (a standby armed from zigbee2mqtt's coordinator backup holds it; a network
 * zigbee2mqtt formed lacks it). Neither Z-Stack nor zigbee2mqtt reads it: keeping it is harmless,
 * while counting it as an extra item cost a reset and a full write inside the outage.
 */
const TOOL_BOOKKEEPING = new Set(["LEGACY.ZIGPY_ZNP_MIGRATION_ID"]);

/**
 * The items `held` has that `wanted` lacks, zigpy-znp's bookkeeping aside. nvram_write cannot
 * delete: a dongle holding any of them must be reset before it can hold exactly `wanted`.
 */
export function extraItems(held: NvramDump, wanted: NvramDump): string[] {
  const extra: string[] = [];
  for (const [section, items] of Object.entries(held)) {
    for (const key of Object.keys(items)) {
      const item = `${section}.${key}`;
      if (wanted[section]?.[key] === undefined && !TOOL_BOOKKEEPING.has(item)) extra.push(item);
    }
  }
  return extra;
}
