/** MT APP_CNF (subsystem 0x0F): BDB commissioning and trust-centre settings. */
import { type CommandSpec, type CommandTable, Status, status } from "./types.js";

const ok = (name: string): CommandSpec => ({ name, sreq: () => status(Status.SUCCESS) });

const commands: Array<[number, CommandSpec]> = [
  [0x01, ok("setDefaultRemoteEndDeviceTimeout")],
  [0x02, ok("setEndDeviceTimeout")],
  [0x03, ok("setAllowRejoinTcPolicy")],
  [0x04, ok("bdbAddInstallCode")],
  [
    0x05,
    {
      name: "bdbStartCommissioning",
      sreq: (dev, req) => {
        dev.startCommissioning(req.u8());
        return status(Status.SUCCESS);
      },
    },
  ],
  [0x07, ok("bdbSetActiveDefaultCentralizedKey")],
  [
    0x08,
    {
      name: "bdbSetChannel",
      sreq: (dev, req) => {
        const isPrimary = req.u8();
        const mask = req.u32();
        if (isPrimary) dev.bdbChannels.primary = mask;
        else dev.bdbChannels.secondary = mask;
        return status(Status.SUCCESS);
      },
    },
  ],
  [0x09, ok("bdbSetTcRequireKeyExchange")],
  [
    0xff,
    {
      name: "setNwkFrameCounter",
      sreq: (dev, req) => {
        dev.setFrameCounter(req.u32());
        return status(Status.SUCCESS);
      },
    },
  ],
];

export const APP_CNF_COMMANDS: CommandTable = new Map(commands);
