/** MT AF (subsystem 4): endpoint registration (RAM) and data requests. */
import type { Reader } from "../codec.js";
import { DevState } from "../constants.js";
import { Subsystem } from "../frame.js";
import type { ZnpDevice } from "../simulator.js";
import { type CommandSpec, type CommandTable, Status, status } from "./types.js";

const NWK_INVALID_REQUEST = 0xc2;

function readClusters(req: Reader): number[] {
  const n = req.u8();
  return Array.from({ length: n }, () => req.u16());
}

/** A unicast to anyone but ourselves finds no route: the simulated network has no devices. */
function confirmStatus(unicastTo: number | undefined): number {
  if (unicastTo === undefined) return Status.SUCCESS;
  return unicastTo === 0x0000 || unicastTo >= 0xfff8 ? Status.SUCCESS : Status.NWK_NO_ROUTE;
}

function sendData(
  dev: ZnpDevice,
  srcEndpoint: number,
  transId: number,
  unicastTo: number | undefined,
): Buffer {
  if (dev.devState !== DevState.ZB_COORD) return status(NWK_INVALID_REQUEST);
  dev.noteTransmission(1);
  const confirm = confirmStatus(unicastTo);
  dev.later(Math.max(1, Math.floor(dev.step / 10)), () =>
    dev.sendAreq(Subsystem.AF, 0x80, Buffer.from([confirm, srcEndpoint, transId])),
  );
  return status(Status.SUCCESS);
}

const commands: Array<[number, CommandSpec]> = [
  [
    0x00,
    {
      name: "register",
      sreq: (dev, req) => {
        const endpoint = req.u8();
        const profileId = req.u16();
        const deviceId = req.u16();
        const deviceVersion = req.u8();
        req.u8(); // latency
        const inClusters = readClusters(req);
        const outClusters = readClusters(req);
        if (endpoint === 0 || endpoint === 0xff) return status(Status.INVALID_PARAMETER);
        if (dev.endpoints.has(endpoint)) return status(Status.APS_DUPLICATE_ENTRY);
        dev.endpoints.set(endpoint, {
          endpoint,
          profileId,
          deviceId,
          deviceVersion,
          inClusters,
          outClusters,
        });
        return status(Status.SUCCESS);
      },
    },
  ],
  [
    0x01,
    {
      name: "dataRequest",
      sreq: (dev, req) => {
        const dst = req.u16();
        req.u8(); // destination endpoint
        const src = req.u8();
        req.u16(); // cluster
        const transId = req.u8();
        return sendData(dev, src, transId, dst);
      },
    },
  ],
  [
    0x02,
    {
      name: "dataRequestExt",
      sreq: (dev, req) => {
        const mode = req.u8();
        const dst = req.bytes(8);
        req.u8(); // destination endpoint
        req.u16(); // destination PAN
        const src = req.u8();
        req.u16(); // cluster
        const transId = req.u8();
        // modes: 1 group, 2 short address, 3 IEEE, 15 broadcast
        const unicastTo = mode === 2 ? dst.readUInt16LE(0) : mode === 3 ? 0x0001 : undefined;
        return sendData(dev, src, transId, unicastTo);
      },
    },
  ],
  [
    0x03,
    {
      name: "dataRequestSrcRtg",
      sreq: (dev, req) => {
        const dst = req.u16();
        req.u8();
        const src = req.u8();
        req.u16();
        const transId = req.u8();
        return sendData(dev, src, transId, dst);
      },
    },
  ],
  [
    0x04,
    {
      name: "delete",
      sreq: (dev, req) => status(dev.endpoints.delete(req.u8()) ? Status.SUCCESS : Status.INVALID_PARAMETER),
    },
  ],
  [0x10, { name: "interPanCtl", sreq: () => status(Status.SUCCESS) }],
];

export const AF_COMMANDS: CommandTable = new Map(commands);
