/**
 * What the Z-Stack firmware does to its NV on its own: at boot (STARTUP_OPTION, default items),
 * when it forms a network, when it stores the network frame counter, and the group table layout.
 * Pure functions over an NvStore; the device (simulator.ts) decides when they run.
 */
import { randomBytes, randomInt } from "node:crypto";
import { ieeeToHex } from "./codec.js";
import {
  DEFAULT_LEGACY_ITEMS,
  DEFAULT_TABLES,
  defaultValue,
  EMPTY_APS_LINK_KEY_TABLE,
  FORMATION_TABLES,
  NIB_OFFSET,
  NIB_TEMPLATE,
} from "./defaults.js";
import type { NvStore } from "./nv.js";
import { EX, NV, SYSID_ZSTACK } from "./nv-ids.js";

export const GENERIC_EPID = Buffer.alloc(8, 0xff);
const ZERO_EPID = Buffer.alloc(8, 0x00);
const CHANNEL_MASK_2G4 = 0x07fff800;

/** Lowest 2.4 GHz channel in a mask, or undefined. */
export function lowestChannel(mask: number): number | undefined {
  for (let c = 11; c <= 26; c++) if (mask & CHANNEL_MASK_2G4 & (1 << c)) return c;
  return undefined;
}

function u32le(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v >>> 0);
  return b;
}

function u16le(v: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16LE(v);
  return b;
}

function emptyTclkEntry(len: number): Buffer {
  const b = Buffer.alloc(len);
  if (len > 16) b[16] = 0xff;
  return b;
}

/**
 * STARTUP_OPTION bit 0x02: forget the network. NIB deleted, keys zeroed, not on a network, link
 * key table and device tables emptied (their sizes kept). The frame counters survive unless
 * `clearFrameCounters` (bit 0x80; ZComDef.h: "FrameCounter should persist across factory resets").
 */
export function clearNetworkState(nv: NvStore, clearFrameCounters: boolean): void {
  nv.deleteLegacy(NV.NIB);
  for (const id of [NV.NWK_ACTIVE_KEY_INFO, NV.NWK_ALTERN_KEY_INFO, NV.NWKKEY]) {
    const v = nv.getLegacy(id);
    if (v) nv.setLegacy(id, Buffer.alloc(v.length));
  }
  if (nv.hasLegacy(NV.BDBNODEISONANETWORK)) nv.setLegacy(NV.BDBNODEISONANETWORK, Buffer.from([0]));
  const linkKeys = nv.getLegacy(NV.APS_LINK_KEY_TABLE);
  if (linkKeys) nv.setLegacy(NV.APS_LINK_KEY_TABLE, Buffer.alloc(linkKeys.length, 0xff));
  const empties: Array<[number, (len: number) => Buffer]> = [
    [EX.ADDRMGR, (len) => Buffer.alloc(len, 0xff)],
    [EX.BINDING_TABLE, (len) => Buffer.alloc(len, 0xff)],
    [EX.DEVICE_LIST, (len) => Buffer.alloc(len, 0xff)],
    [EX.TCLK_TABLE, emptyTclkEntry],
    [EX.TCLK_IC_TABLE, (len) => Buffer.alloc(len)],
    [EX.APS_KEY_DATA_TABLE, (len) => Buffer.alloc(len)],
  ];
  if (clearFrameCounters) empties.push([EX.NWK_SEC_MATERIAL_TABLE, (len) => Buffer.alloc(len)]);
  for (const [itemId, empty] of empties) {
    for (const sub of nv.tableSubIds(itemId)) {
      const v = nv.getExtended(SYSID_ZSTACK, itemId, sub)!;
      nv.setExtended(SYSID_ZSTACK, itemId, sub, empty(v.length));
    }
  }
}

/** STARTUP_OPTION bit 0x01: configuration items back to their defaults (EPID = EXTADDR, PAN FFFF, …). */
export function clearConfig(nv: NvStore, hardwareIeee: Buffer): void {
  const extAddr = nv.getLegacy(NV.EXTADDR) ?? hardwareIeee;
  for (const entry of DEFAULT_LEGACY_ITEMS) {
    if (entry.config) nv.setLegacy(entry.id, defaultValue(entry, hardwareIeee, extAddr));
  }
}

/** zgInit: create every missing default item and table entry (a fresh STARTUP_OPTION holds 0x02). */
export function createMissingDefaults(nv: NvStore, hardwareIeee: Buffer): void {
  for (const entry of DEFAULT_LEGACY_ITEMS) {
    if (nv.hasLegacy(entry.id)) continue;
    const extAddr = nv.getLegacy(NV.EXTADDR) ?? hardwareIeee;
    nv.setLegacy(entry.id, defaultValue(entry, hardwareIeee, extAddr));
  }
  for (const [itemId, count, empty] of DEFAULT_TABLES) {
    for (let sub = 0; sub < count; sub++) {
      if (nv.getExtended(SYSID_ZSTACK, itemId, sub) === undefined) {
        nv.setExtended(SYSID_ZSTACK, itemId, sub, Buffer.from(empty, "hex"));
      }
    }
  }
}

export interface FormedNetwork {
  panId: number;
  channel: number;
  /** little-endian, as in the NIB */
  epid: Buffer;
}

/**
 * Formation (ZNP-SIMULATOR.md §3.4): channel = lowest in the mask (else 11), PAN = PANID (random
 * if unset), EPID = APS_USE_EXT_PANID if non-zero else EXTENDED_PAN_ID, key = PRECFGKEY. Writes
 * the NIB, key info, NWKKEY, the frame counter entry, BDBNODEISONANETWORK, CHANLIST, PANID, and
 * creates the link key table and the address manager if missing.
 */
export function formNetwork(nv: NvStore, channelMask: number, ieee: Buffer): FormedNetwork {
  const channel = lowestChannel(channelMask) ?? 11;
  let panId = nv.getLegacy(NV.PANID)?.readUInt16LE(0) ?? 0xffff;
  if (panId >= 0xfff8 || panId === 0) panId = randomInt(1, 0xfff7);
  const apsEpid = nv.getLegacy(NV.APS_USE_EXT_PANID);
  const epid =
    apsEpid && apsEpid.length === 8 && !apsEpid.equals(ZERO_EPID)
      ? Buffer.from(apsEpid)
      : Buffer.from(nv.getLegacy(NV.EXTENDED_PAN_ID) ?? ieee);
  const preconfigured = nv.getLegacy(NV.PRECFGKEY);
  const key = preconfigured && preconfigured.length === 16 ? Buffer.from(preconfigured) : randomBytes(16);

  const nib = Buffer.from(NIB_TEMPLATE, "hex");
  nib.writeUInt16LE(0x0000, NIB_OFFSET.nwkDevAddress);
  nib[NIB_OFFSET.nwkLogicalChannel] = channel;
  nib.writeUInt16LE(0x0000, NIB_OFFSET.nwkCoordAddress);
  nib.fill(0, NIB_OFFSET.nwkCoordExtAddress, NIB_OFFSET.nwkCoordExtAddress + 8);
  nib.writeUInt16LE(panId, NIB_OFFSET.nwkPanId);
  nib.writeUInt32LE((1 << channel) >>> 0, NIB_OFFSET.channelList);
  epid.copy(nib, NIB_OFFSET.extendedPANID);
  nib[NIB_OFFSET.nwkKeyLoaded] = 1;
  nib.writeUInt16LE(0x0000, NIB_OFFSET.nwkManagerAddr);
  nib[NIB_OFFSET.nwkUpdateId] = 0;
  nv.setLegacy(NV.NIB, nib);

  const keyInfo = Buffer.concat([Buffer.from([0x00]), key]);
  nv.setLegacy(NV.NWK_ACTIVE_KEY_INFO, keyInfo);
  nv.setLegacy(NV.NWK_ALTERN_KEY_INFO, keyInfo);
  const counter = storedFrameCounter(nv, epid);
  // NWKKEY (nwkActiveKeyItems): key descriptor, 3 bytes of padding, frame counter
  nv.setLegacy(NV.NWKKEY, Buffer.concat([keyInfo, Buffer.from([0xff, 0xff, 0xff]), u32le(counter)]));
  writeFrameCounter(nv, epid, counter);
  nv.setLegacy(NV.BDBNODEISONANETWORK, Buffer.from([1]));
  nv.setLegacy(NV.CHANLIST, u32le(1 << channel));
  nv.setLegacy(NV.PANID, u16le(panId));
  if (!nv.hasLegacy(NV.APS_LINK_KEY_TABLE)) {
    nv.setLegacy(NV.APS_LINK_KEY_TABLE, Buffer.from(EMPTY_APS_LINK_KEY_TABLE, "hex"));
  }
  for (const [itemId, count, empty] of FORMATION_TABLES) {
    if (nv.getExtended(SYSID_ZSTACK, itemId, 0) !== undefined) continue;
    for (let sub = 0; sub < count; sub++)
      nv.setExtended(SYSID_ZSTACK, itemId, sub, Buffer.from(empty, "hex"));
  }
  return { panId, channel, epid };
}

/** Move the formed network to another channel (nwkUpdateId + 1); false if there is no network. */
export function changeChannel(nv: NvStore, channel: number): boolean {
  const nib = nv.getLegacy(NV.NIB);
  if (!nib || nib.length < NIB_OFFSET.nwkUpdateId + 1) return false;
  const next = Buffer.from(nib);
  next[NIB_OFFSET.nwkLogicalChannel] = channel;
  next.writeUInt32LE((1 << channel) >>> 0, NIB_OFFSET.channelList);
  next[NIB_OFFSET.nwkUpdateId] = (next[NIB_OFFSET.nwkUpdateId]! + 1) & 0xff;
  nv.setLegacy(NV.NIB, next);
  nv.setLegacy(NV.CHANLIST, u32le(1 << channel));
  return true;
}

export function describeNetwork(network: FormedNetwork): string {
  return `pan 0x${network.panId.toString(16)}, epid ${ieeeToHex(network.epid)}, channel ${network.channel}`;
}

/** The counter NV holds for a network: its own NWK_SEC_MATERIAL entry, else the generic one, else 0. */
export function storedFrameCounter(nv: NvStore, epid: Buffer): number {
  let generic: number | undefined;
  for (const entry of nv.table(EX.NWK_SEC_MATERIAL_TABLE)) {
    if (entry.length < 12) continue;
    const entryEpid = entry.subarray(4, 12);
    if (entryEpid.equals(epid)) return entry.readUInt32LE(0);
    if (generic === undefined && entryEpid.equals(GENERIC_EPID)) generic = entry.readUInt32LE(0);
  }
  return generic ?? 0;
}

/** Store a network's counter in its entry (else the first free one, else the last) and in NWKKEY. */
export function writeFrameCounter(nv: NvStore, epid: Buffer, value: number): void {
  const entries = nv.table(EX.NWK_SEC_MATERIAL_TABLE);
  let index = entries.findIndex((e) => e.length >= 12 && e.subarray(4, 12).equals(epid));
  if (index < 0) index = entries.findIndex((e) => e.length >= 12 && e.subarray(4, 12).equals(ZERO_EPID));
  if (index < 0) index = entries.length - 1;
  if (index >= 0) {
    const current = entries[index]!;
    const owner = current.length >= 12 && current.subarray(4, 12).equals(GENERIC_EPID) ? GENERIC_EPID : epid;
    const entry = Buffer.concat([u32le(value), owner]);
    if (!entry.equals(current)) nv.setExtended(SYSID_ZSTACK, EX.NWK_SEC_MATERIAL_TABLE, index, entry);
  }
  const nwkKey = nv.getLegacy(NV.NWKKEY);
  if (nwkKey && nwkKey.length === 24 && nwkKey.readUInt32LE(20) !== value >>> 0) {
    const next = Buffer.from(nwkKey);
    next.writeUInt32LE(value >>> 0, 20);
    nv.setLegacy(NV.NWKKEY, next);
  }
}

export interface GroupRecord {
  endpoint: number;
  groupId: number;
  /** aps_Group_t name: length byte + 15 characters */
  name: Buffer;
}

/** GROUP_TABLE (0x0042): u16 record count, then 20-byte records {endpoint, pad, groupId u16, name[16]}. */
export function readGroups(nv: NvStore): GroupRecord[] {
  const raw = nv.getLegacy(NV.GROUP_TABLE);
  if (!raw || raw.length < 2) return [];
  const count = raw.readUInt16LE(0);
  const out: GroupRecord[] = [];
  for (let i = 0; i < count && 2 + (i + 1) * 20 <= raw.length; i++) {
    const rec = raw.subarray(2 + i * 20, 2 + (i + 1) * 20);
    out.push({ endpoint: rec[0]!, groupId: rec.readUInt16LE(2), name: Buffer.from(rec.subarray(4, 20)) });
  }
  return out;
}

/** Rewrite the group table, keeping its record slots (unused ones are FF, as in the real dump). */
export function writeGroups(nv: NvStore, groups: GroupRecord[]): void {
  const existingSlots = Math.floor(((nv.getLegacy(NV.GROUP_TABLE)?.length ?? 2) - 2) / 20);
  const raw = Buffer.alloc(2 + Math.max(groups.length, existingSlots) * 20, 0xff);
  raw.writeUInt16LE(groups.length, 0);
  groups.forEach((g, i) => {
    const rec = raw.subarray(2 + i * 20, 2 + (i + 1) * 20);
    rec[0] = g.endpoint;
    rec.writeUInt16LE(g.groupId, 2);
    rec.fill(0, 4);
    g.name.copy(rec, 4, 0, 16);
  });
  nv.setLegacy(NV.GROUP_TABLE, raw);
}
