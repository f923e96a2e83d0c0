import type { Reader } from "../codec.js";
import type { ZnpDevice } from "../simulator.js";

/** Handles a synchronous request; returns the SRSP payload. */
export type SreqHandler = (dev: ZnpDevice, req: Reader) => Buffer;
/** Handles an asynchronous request (no SRSP). */
export type AreqHandler = (dev: ZnpDevice, req: Reader) => void;

export interface CommandSpec {
  name: string;
  sreq?: SreqHandler;
  areq?: AreqHandler;
}

export type CommandTable = ReadonlyMap<number, CommandSpec>;

/** MT status codes the handlers answer with (Z-Stack ZComDef.h / nvintf.h). */
export const Status = {
  SUCCESS: 0x00,
  FAILURE: 0x01,
  INVALID_PARAMETER: 0x02,
  NV_ITEM_UNINIT: 0x09,
  NV_OPER_FAILED: 0x0a,
  NV_BAD_ITEM_LEN: 0x0c,
  /** nvintf.h NVINTF_BADLENGTH, returned by the extended-NV commands. */
  NVINTF_BADLENGTH: 0x05,
  /** nvintf.h NVINTF_NOTFOUND. */
  NVINTF_NOTFOUND: 0x0a,
  ZDP_INVALID_EP: 0x82,
  ZDP_NOT_ACTIVE: 0x83,
  APS_DUPLICATE_ENTRY: 0xb8,
  NWK_NO_ROUTE: 0xcd,
} as const;

export function status(code: number): Buffer {
  return Buffer.from([code]);
}
