/**
 * The dongle's non-volatile memory: legacy OSAL items (16-bit id) and the SimpleLink NV driver's
 * extended items (sysId, itemId, subId). On Z-Stack 3.x.0 the legacy items live in the extended
 * space as (sysId 1, itemId 0 = LEGACY, subId = OSAL id); both views reach the same bytes here.
 */
import {
  EX,
  EXTENDED_ITEMS,
  LEGACY_ITEMS,
  LEGACY_TABLE_RANGES,
  MAX_MT_LEGACY_ID,
  NV,
  SYSID_ZSTACK,
} from "./nv-ids.js";

export interface NvJson {
  legacy: Record<string, string>;
  extended: Record<string, Record<string, Record<string, string>>>;
}

/** The JSON shape zigpy-znp's `nvram_read` writes and `nvram_write` reads. */
export type ZigpyNvramDump = Record<string, Record<string, string>>;

const hex4 = (n: number): string => `0x${n.toString(16).padStart(4, "0").toUpperCase()}`;
const lowerHex4 = (n: number): string => `0x${n.toString(16).padStart(4, "0")}`;

function parseId(key: string, what: string): number {
  if (!/^0x[0-9a-fA-F]{1,4}$/.test(key) && !/^[0-9]{1,5}$/.test(key)) {
    throw new Error(`bad ${what} ${JSON.stringify(key)}`);
  }
  const n = Number(key);
  if (!Number.isInteger(n) || n < 0 || n > 0xffff) throw new Error(`bad ${what} ${JSON.stringify(key)}`);
  return n;
}

function parseHex(value: unknown, where: string): Buffer {
  if (typeof value !== "string" || !/^([0-9a-fA-F]{2})*$/.test(value)) {
    throw new Error(`${where}: value is not a hex string`);
  }
  return Buffer.from(value, "hex");
}

export class NvStore {
  private readonly legacy = new Map<number, Buffer>();
  /** key: `${sysId}:${itemId}:${subId}` (legacy items are never stored here). */
  private readonly extended = new Map<string, Buffer>();
  /** Called after every change, so the owner can persist. */
  onChange: () => void = () => {};

  // ---- legacy (OSAL) items ----

  getLegacy(id: number): Buffer | undefined {
    return this.legacy.get(id);
  }

  hasLegacy(id: number): boolean {
    return this.legacy.has(id);
  }

  setLegacy(id: number, value: Buffer): void {
    this.legacy.set(id, Buffer.from(value));
    this.onChange();
  }

  deleteLegacy(id: number): boolean {
    const existed = this.legacy.delete(id);
    if (existed) this.onChange();
    return existed;
  }

  legacyIds(): number[] {
    return [...this.legacy.keys()].sort((a, b) => a - b);
  }

  // ---- extended items (legacy ones aliased under sysId 1, itemId 0) ----

  private static key(sysId: number, itemId: number, subId: number): string {
    return `${sysId}:${itemId}:${subId}`;
  }

  private static isLegacyAlias(sysId: number, itemId: number): boolean {
    return sysId === SYSID_ZSTACK && itemId === EX.LEGACY;
  }

  getExtended(sysId: number, itemId: number, subId: number): Buffer | undefined {
    if (NvStore.isLegacyAlias(sysId, itemId)) return this.getLegacy(subId);
    return this.extended.get(NvStore.key(sysId, itemId, subId));
  }

  setExtended(sysId: number, itemId: number, subId: number, value: Buffer): void {
    if (NvStore.isLegacyAlias(sysId, itemId)) {
      this.setLegacy(subId, value);
      return;
    }
    this.extended.set(NvStore.key(sysId, itemId, subId), Buffer.from(value));
    this.onChange();
  }

  deleteExtended(sysId: number, itemId: number, subId: number): boolean {
    if (NvStore.isLegacyAlias(sysId, itemId)) return this.deleteLegacy(subId);
    const existed = this.extended.delete(NvStore.key(sysId, itemId, subId));
    if (existed) this.onChange();
    return existed;
  }

  /** Entries 0, 1, … of a Z-Stack table, up to the first missing one (how every reader walks them). */
  table(itemId: number): Buffer[] {
    const out: Buffer[] = [];
    for (let sub = 0; sub <= 0xffff; sub++) {
      const v = this.extended.get(NvStore.key(SYSID_ZSTACK, itemId, sub));
      if (v === undefined || v.length === 0) break;
      out.push(v);
    }
    return out;
  }

  /** Every stored sub id of a table, gaps included. */
  tableSubIds(itemId: number): number[] {
    const prefix = `${SYSID_ZSTACK}:${itemId}:`;
    return [...this.extended.keys()]
      .filter((k) => k.startsWith(prefix))
      .map((k) => Number(k.slice(prefix.length)))
      .sort((a, b) => a - b);
  }

  clear(): void {
    this.legacy.clear();
    this.extended.clear();
    this.onChange();
  }

  // ---- persistence ----

  toJSON(): NvJson {
    const legacy: Record<string, string> = {};
    for (const id of this.legacyIds()) legacy[lowerHex4(id)] = this.legacy.get(id)!.toString("hex");
    const extended: NvJson["extended"] = {};
    const keys = [...this.extended.keys()]
      .map((k) => k.split(":").map(Number) as [number, number, number])
      .sort((a, b) => a[0] - b[0] || a[1] - b[1] || a[2] - b[2]);
    for (const [sys, item, sub] of keys) {
      const bySys = extended[String(sys)] ?? {};
      extended[String(sys)] = bySys;
      const byItem = bySys[lowerHex4(item)] ?? {};
      bySys[lowerHex4(item)] = byItem;
      byItem[lowerHex4(sub)] = this.extended.get(NvStore.key(sys, item, sub))!.toString("hex");
    }
    return { legacy, extended };
  }

  static fromJSON(json: unknown): NvStore {
    const store = new NvStore();
    if (typeof json !== "object" || json === null) throw new Error("nv: not an object");
    const { legacy, extended } = json as Partial<NvJson>;
    for (const [k, v] of Object.entries(legacy ?? {})) {
      store.legacy.set(parseId(k, "legacy id"), parseHex(v, `nv.legacy[${k}]`));
    }
    for (const [sys, items] of Object.entries(extended ?? {})) {
      const sysId = parseId(sys, "sysId");
      for (const [item, subs] of Object.entries(items ?? {})) {
        const itemId = parseId(item, "itemId");
        for (const [sub, v] of Object.entries(subs ?? {})) {
          const subId = parseId(sub, "subId");
          const value = parseHex(v, `nv.extended[${sys}][${item}][${sub}]`);
          if (NvStore.isLegacyAlias(sysId, itemId)) store.legacy.set(subId, value);
          else store.extended.set(NvStore.key(sysId, itemId, subId), value);
        }
      }
    }
    return store;
  }

  /**
   * Store a zigpy-znp `nvram_read` dump the way `nvram_write` would (every item, creating missing
   * ones, deleting nothing). Unknown names are an error, so a typo cannot silently drop an item.
   */
  applyZigpyDump(dump: ZigpyNvramDump): void {
    for (const [key, value] of Object.entries(dump.LEGACY ?? {})) {
      const [name, offsetText] = key.split("+") as [string, string | undefined];
      const base = LEGACY_ITEMS.find(([n]) => n === name)?.[1];
      if (base === undefined) throw new Error(`unknown legacy NV item ${JSON.stringify(key)}`);
      const id = base + (offsetText === undefined ? 0 : Number(offsetText));
      if (!Number.isInteger(id)) throw new Error(`bad legacy NV item ${JSON.stringify(key)}`);
      // Not stored: MT proxies it to POLL_RATE, which the dump carries (later) in full.
      if (id === NV.POLL_RATE_OLD16) continue;
      this.setLegacy(id, parseHex(value, `LEGACY.${key}`));
    }
    for (const [section, entries] of Object.entries(dump)) {
      if (section === "LEGACY") continue;
      const itemId = EXTENDED_ITEMS.find(([n]) => n === section)?.[1];
      if (itemId === undefined) throw new Error(`unknown NV table ${JSON.stringify(section)}`);
      for (const [sub, value] of Object.entries(entries)) {
        this.setExtended(SYSID_ZSTACK, itemId, parseId(sub, "sub id"), parseHex(value, `${section}.${sub}`));
      }
    }
  }

  /**
   * The NV as zigpy-znp's `nvram_read` reports it: named legacy items (tables as `NAME+n` up to the
   * first gap), then each non-empty extended table of sysId 1 up to its first gap. `pollRateOld16`
   * supplies the proxied POLL_RATE_OLD16 value, which the tool always gets.
   */
  toZigpyDump(pollRateOld16: Buffer): ZigpyNvramDump {
    const legacy: Record<string, string> = {};
    for (const [name, id] of LEGACY_ITEMS) {
      if (id > MAX_MT_LEGACY_ID) continue;
      if (name === "POLL_RATE_OLD16") {
        legacy[name] = pollRateOld16.toString("hex");
        continue;
      }
      const end = LEGACY_TABLE_RANGES.get(name);
      if (end !== undefined) {
        const endId = LEGACY_ITEMS.find(([n]) => n === end)![1];
        for (let offset = 0; offset < endId - id; offset++) {
          const v = this.legacy.get(id + offset);
          if (v === undefined || v.length === 0) break;
          legacy[`${name}+${offset}`] = v.toString("hex");
        }
        continue;
      }
      const v = this.legacy.get(id);
      if (v !== undefined && v.length > 0) legacy[name] = v.toString("hex");
    }
    const dump: ZigpyNvramDump = { LEGACY: legacy };
    for (const [name, itemId] of EXTENDED_ITEMS) {
      const entries = this.table(itemId);
      if (entries.length === 0) continue;
      const section: Record<string, string> = {};
      entries.forEach((v, sub) => {
        section[hex4(sub)] = v.toString("hex");
      });
      dump[name] = section;
    }
    return dump;
  }
}
