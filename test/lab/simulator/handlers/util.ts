/** MT UTIL (subsystem 7): device info and the few utilities hosts call at start-up. */
import { Writer } from "../codec.js";
import { DevState } from "../constants.js";
import { NV } from "../nv-ids.js";
import { type CommandSpec, type CommandTable, Status, status } from "./types.js";

/** sizeof(associated_devices_t) on CC26xx (aligned); zigpy-znp infers struct alignment from it. */
const ASSOC_DEVICE_SIZE = 36;

const commands: Array<[number, CommandSpec]> = [
  [
    0x00,
    {
      name: "getDeviceInfo",
      sreq: (dev) =>
        new Writer()
          .u8(Status.SUCCESS)
          .bytes(dev.effectiveIeee())
          .u16(dev.devState === DevState.ZB_COORD ? 0x0000 : 0xfffe)
          // device type bitmap: coordinator | router | end device capable
          .u8(0x07)
          .u8(dev.devState)
          .u8(0)
          .build(),
    },
  ],
  [
    0x01,
    {
      name: "getNvInfo",
      sreq: (dev) =>
        new Writer()
          .u8(Status.SUCCESS)
          .bytes(dev.effectiveIeee())
          .bytes(dev.nv.getLegacy(NV.CHANLIST) ?? Buffer.alloc(4))
          .bytes(dev.nv.getLegacy(NV.PANID) ?? Buffer.from([0xff, 0xff]))
          .u8(5)
          .bytes(dev.nv.getLegacy(NV.PRECFGKEY) ?? Buffer.alloc(16))
          .build(),
    },
  ],
  [0x09, { name: "timeAlive", sreq: (dev) => new Writer().u32(dev.uptimeSeconds).build() }],
  [0x0a, { name: "ledControl", sreq: () => status(Status.SUCCESS) }],
  [0x48, { name: "assocCount", sreq: () => new Writer().u16(0).build() }],
  [
    0x49,
    {
      name: "assocFindDevice",
      // No associated devices: MT fills the struct with 0xFF when AssocFindDevice finds none.
      sreq: () => Buffer.alloc(ASSOC_DEVICE_SIZE, 0xff),
    },
  ],
];

export const UTIL_COMMANDS: CommandTable = new Map(commands);
