/** MT SYS (subsystem 1): identity, reset and the NV commands (TI mt_sys.c semantics). */
import { randomInt } from "node:crypto";
import { Writer } from "../codec.js";
import { MAX_MT_LEGACY_ID, NV, SYSID_ZSTACK } from "../nv-ids.js";
import type { ZnpDevice } from "../simulator.js";
import { type CommandSpec, type CommandTable, Status, status } from "./types.js";

/** MT frames carry at most 250 payload bytes; a read reply spends two on status and length. */
const MAX_READ = 248;

/** SYS, AF, ZDO, UTIL, GP and APP_CNF, as a CC2652P coordinator firmware reports them. */
export const CAPABILITIES = 0x0659;

/** Z-Stack 3.x.0 (product 1), 2.7.1, build 20230507 — the Koenkk CC2652 coordinator firmware. */
export const VERSION = { transportRev: 2, product: 1, major: 2, minor: 7, maint: 1, revision: 20230507 };

function readReply(value: Buffer | undefined, offset: number): Buffer {
  if (value === undefined) return Buffer.from([Status.NV_OPER_FAILED, 0]);
  if (offset >= value.length) return Buffer.from([Status.INVALID_PARAMETER, 0]);
  const chunk = value.subarray(offset, offset + MAX_READ);
  return new Writer().u8(Status.SUCCESS).u8(chunk.length).bytes(chunk).build();
}

function legacyValue(dev: ZnpDevice, id: number): Buffer | undefined {
  if (id > MAX_MT_LEGACY_ID) return undefined;
  if (id === NV.POLL_RATE_OLD16) return dev.pollRateOld16();
  return dev.nv.getLegacy(id);
}

function legacyWrite(dev: ZnpDevice, id: number, offset: number, data: Buffer): number {
  if (id === NV.POLL_RATE_OLD16) {
    dev.writePollRateOld16(offset, data);
    return Status.SUCCESS;
  }
  const current = id > MAX_MT_LEGACY_ID ? undefined : dev.nv.getLegacy(id);
  if (current === undefined) return Status.NV_ITEM_UNINIT;
  if (offset + data.length > current.length) return Status.INVALID_PARAMETER;
  const next = Buffer.from(current);
  data.copy(next, offset);
  dev.nv.setLegacy(id, next);
  return Status.SUCCESS;
}

const commands: Array<[number, CommandSpec]> = [
  [0x00, { name: "resetReq", areq: (dev, req) => dev.requestReset(req.u8()) }],
  [0x01, { name: "ping", sreq: () => new Writer().u16(CAPABILITIES).build() }],
  [
    0x02,
    {
      name: "version",
      sreq: () =>
        new Writer()
          .u8(VERSION.transportRev)
          .u8(VERSION.product)
          .u8(VERSION.major)
          .u8(VERSION.minor)
          .u8(VERSION.maint)
          .u32(VERSION.revision)
          // Bootloader build type (0: none) and revision (0: not provided), as real firmware appends.
          .u8(0)
          .u32(0)
          .build(),
    },
  ],
  [
    0x03,
    {
      name: "setExtAddr",
      sreq: (dev, req) => {
        dev.nv.setLegacy(NV.EXTADDR, req.bytes(8));
        return status(Status.SUCCESS);
      },
    },
  ],
  [0x04, { name: "getExtAddr", sreq: (dev) => dev.effectiveIeee() }],
  [
    0x07,
    {
      name: "osalNvItemInit",
      sreq: (dev, req) => {
        const id = req.u16();
        const len = req.u16();
        const initLen = req.u8();
        const init = req.bytes(initLen);
        if (id === NV.POLL_RATE_OLD16) return status(Status.SUCCESS);
        if (id > MAX_MT_LEGACY_ID || len === 0) return status(Status.NV_OPER_FAILED);
        if (dev.nv.hasLegacy(id)) return status(Status.SUCCESS);
        const value = Buffer.alloc(len);
        init.copy(value, 0, 0, Math.min(initLen, len));
        dev.nv.setLegacy(id, value);
        // Like osal_nv_item_init: NV_ITEM_UNINIT tells the caller the item was just created.
        return status(Status.NV_ITEM_UNINIT);
      },
    },
  ],
  [
    0x08,
    {
      name: "osalNvRead",
      sreq: (dev, req) => {
        const id = req.u16();
        return readReply(legacyValue(dev, id), req.u8());
      },
    },
  ],
  [
    0x09,
    {
      name: "osalNvWrite",
      sreq: (dev, req) => {
        const id = req.u16();
        const offset = req.u8();
        const data = req.bytes(req.u8());
        return status(legacyWrite(dev, id, offset, data));
      },
    },
  ],
  [0x0c, { name: "random", sreq: () => new Writer().u16(randomInt(0, 0x10000)).build() }],
  [
    0x0f,
    {
      name: "stackTune",
      sreq: (_dev, req) => {
        req.u8();
        return Buffer.from([req.u8()]);
      },
    },
  ],
  [
    0x12,
    {
      name: "osalNvDelete",
      sreq: (dev, req) => {
        const id = req.u16();
        const len = req.u16();
        if (id === NV.POLL_RATE_OLD16) return status(Status.SUCCESS);
        const current = id > MAX_MT_LEGACY_ID ? undefined : dev.nv.getLegacy(id);
        if (current === undefined) return status(Status.NV_ITEM_UNINIT);
        if (current.length !== len) return status(Status.NV_BAD_ITEM_LEN);
        dev.nv.deleteLegacy(id);
        return status(Status.SUCCESS);
      },
    },
  ],
  [
    0x13,
    {
      name: "osalNvLength",
      sreq: (dev, req) => {
        const id = req.u16();
        const value = id === NV.POLL_RATE_OLD16 ? dev.pollRateOld16IfStored() : legacyValue(dev, id);
        return new Writer().u16(value?.length ?? 0).build();
      },
    },
  ],
  [0x14, { name: "setTxPower", sreq: () => status(Status.SUCCESS) }],
  [
    0x1c,
    {
      name: "osalNvReadExt",
      sreq: (dev, req) => {
        const id = req.u16();
        return readReply(legacyValue(dev, id), req.u16());
      },
    },
  ],
  [
    0x1d,
    {
      name: "osalNvWriteExt",
      sreq: (dev, req) => {
        const id = req.u16();
        const offset = req.u16();
        const data = req.bytes(req.u16());
        return status(legacyWrite(dev, id, offset, data));
      },
    },
  ],
  [
    0x30,
    {
      name: "nvCreate",
      sreq: (dev, req) => {
        const [sys, item, sub] = [req.u8(), req.u16(), req.u16()];
        const len = req.u32();
        if (len === 0 || len > 0xffff || !extendedAddressable(sys, item, sub)) {
          return status(Status.NVINTF_BADLENGTH);
        }
        const current = dev.nv.getExtended(sys, item, sub);
        if (current !== undefined) {
          return status(current.length === len ? Status.SUCCESS : Status.NVINTF_BADLENGTH);
        }
        dev.nv.setExtended(sys, item, sub, Buffer.alloc(len));
        return status(Status.SUCCESS);
      },
    },
  ],
  [
    0x31,
    {
      name: "nvDelete",
      sreq: (dev, req) => {
        const [sys, item, sub] = [req.u8(), req.u16(), req.u16()];
        if (!extendedAddressable(sys, item, sub)) return status(Status.NVINTF_NOTFOUND);
        return status(dev.nv.deleteExtended(sys, item, sub) ? Status.SUCCESS : Status.NVINTF_NOTFOUND);
      },
    },
  ],
  [
    0x32,
    {
      name: "nvLength",
      sreq: (dev, req) => {
        const [sys, item, sub] = [req.u8(), req.u16(), req.u16()];
        const value = extendedAddressable(sys, item, sub) ? dev.nv.getExtended(sys, item, sub) : undefined;
        return new Writer().u32(value?.length ?? 0).build();
      },
    },
  ],
  [
    0x33,
    {
      name: "nvRead",
      sreq: (dev, req) => {
        const [sys, item, sub] = [req.u8(), req.u16(), req.u16()];
        const offset = req.u16();
        const len = req.u8();
        const value = extendedAddressable(sys, item, sub) ? dev.nv.getExtended(sys, item, sub) : undefined;
        if (value === undefined) return Buffer.from([Status.NVINTF_NOTFOUND, 0]);
        if (offset >= value.length) return Buffer.from([Status.NVINTF_BADLENGTH, 0]);
        const chunk = value.subarray(offset, offset + Math.min(len, MAX_READ));
        return new Writer().u8(Status.SUCCESS).u8(chunk.length).bytes(chunk).build();
      },
    },
  ],
  [
    0x34,
    {
      name: "nvWrite",
      sreq: (dev, req) => {
        const [sys, item, sub] = [req.u8(), req.u16(), req.u16()];
        const offset = req.u16();
        const data = req.bytes(req.u8());
        const value = extendedAddressable(sys, item, sub) ? dev.nv.getExtended(sys, item, sub) : undefined;
        if (value === undefined) return status(Status.NVINTF_NOTFOUND);
        if (offset + data.length > value.length) return status(Status.NVINTF_BADLENGTH);
        const next = Buffer.from(value);
        data.copy(next, offset);
        dev.nv.setExtended(sys, item, sub, next);
        return status(Status.SUCCESS);
      },
    },
  ],
  [
    0x35,
    {
      name: "nvUpdate",
      sreq: (dev, req) => {
        const [sys, item, sub] = [req.u8(), req.u16(), req.u16()];
        const data = req.bytes(req.u8());
        if (data.length === 0 || !extendedAddressable(sys, item, sub)) return status(Status.NVINTF_BADLENGTH);
        dev.nv.setExtended(sys, item, sub, data);
        return status(Status.SUCCESS);
      },
    },
  ],
  [0x36, { name: "nvCompact", sreq: () => status(Status.SUCCESS) }],
];

/** The legacy alias (sysId 1, item 0) only reaches the OSAL ids MT can reach directly. */
function extendedAddressable(sys: number, item: number, sub: number): boolean {
  return !(sys === SYSID_ZSTACK && item === 0 && sub > MAX_MT_LEGACY_ID);
}

export const SYS_COMMANDS: CommandTable = new Map(commands);
