/**
 * MT ZDO (subsystem 5): start-up, the coordinator's own descriptors, permit join, groups and
 * network info. Requests to other nodes get their SRSP but no answer: the simulated network has no
 * devices, so the host's wait times out as it would for an absent node.
 */
import { Writer } from "../codec.js";
import { DevState } from "../constants.js";
import { NIB_OFFSET } from "../defaults.js";
import { Subsystem } from "../frame.js";
import { type GroupRecord, readGroups, writeGroups } from "../nv-network.js";
import type { ZnpDevice } from "../simulator.js";
import { type CommandSpec, type CommandTable, Status, status } from "./types.js";

const ADDR_RSP_DELAY = 5;

function answerLater(dev: ZnpDevice, command: number, payload: Buffer): void {
  dev.later(ADDR_RSP_DELAY, () => dev.sendAreq(Subsystem.ZDO, command, payload));
}

function ownShortAddress(dev: ZnpDevice): number {
  return dev.devState === DevState.ZB_COORD ? 0x0000 : 0xfffe;
}

function addrRsp(dev: ZnpDevice): Buffer {
  // status, IEEE, NWK, start index, number of associated devices (MT order)
  return new Writer()
    .u8(Status.SUCCESS)
    .bytes(dev.effectiveIeee())
    .u16(ownShortAddress(dev))
    .u8(0)
    .u8(0)
    .build();
}

function isSelf(dst: number): boolean {
  return dst === 0x0000;
}

const commands: Array<[number, CommandSpec]> = [
  [
    0x00,
    {
      name: "nwkAddrReq",
      sreq: (dev, req) => {
        const ieee = req.bytes(8);
        if (ieee.equals(dev.effectiveIeee())) answerLater(dev, 0x80, addrRsp(dev));
        return status(Status.SUCCESS);
      },
    },
  ],
  [
    0x01,
    {
      name: "ieeeAddrReq",
      sreq: (dev, req) => {
        if (isSelf(req.u16())) answerLater(dev, 0x81, addrRsp(dev));
        return status(Status.SUCCESS);
      },
    },
  ],
  [
    0x02,
    {
      name: "nodeDescReq",
      sreq: (dev, req) => {
        const dst = req.u16();
        const nwk = req.u16();
        if (isSelf(dst) && isSelf(nwk)) {
          answerLater(
            dev,
            0x82,
            new Writer()
              .u16(0x0000)
              .u8(Status.SUCCESS)
              .u16(0x0000)
              .u8(0x00) // logical type coordinator, no complex/user descriptor
              .u8(0x40) // 2.4 GHz band
              .u8(0x8f) // MAC capabilities: alt PAN coordinator, FFD, mains, rx on idle, allocate address
              .u16(0x0000) // manufacturer code (TI firmware default)
              .u8(0x50) // max buffer size
              .u16(0x00a0) // max incoming transfer size
              .u16(0x2c41) // server mask: primary trust centre, network manager, stack revision 22
              .u16(0x00a0) // max outgoing transfer size
              .u8(0x00) // descriptor capabilities
              .build(),
          );
        }
        return status(Status.SUCCESS);
      },
    },
  ],
  [
    0x04,
    {
      name: "simpleDescReq",
      sreq: (dev, req) => {
        const dst = req.u16();
        const nwk = req.u16();
        const endpoint = req.u8();
        if (isSelf(dst) && isSelf(nwk)) {
          const desc = dev.endpoints.get(endpoint);
          const w = new Writer().u16(0x0000);
          if (!desc) {
            const code = endpoint === 0 || endpoint === 0xff ? Status.ZDP_INVALID_EP : Status.ZDP_NOT_ACTIVE;
            w.u8(code).u16(0x0000).u8(0);
          } else {
            const body = new Writer()
              .u8(desc.endpoint)
              .u16(desc.profileId)
              .u16(desc.deviceId)
              .u8(desc.deviceVersion)
              .u8(desc.inClusters.length);
            for (const c of desc.inClusters) body.u16(c);
            body.u8(desc.outClusters.length);
            for (const c of desc.outClusters) body.u16(c);
            const bytes = body.build();
            w.u8(Status.SUCCESS).u16(0x0000).u8(bytes.length).bytes(bytes);
          }
          answerLater(dev, 0x84, w.build());
        }
        return status(Status.SUCCESS);
      },
    },
  ],
  [
    0x05,
    {
      name: "activeEpReq",
      sreq: (dev, req) => {
        const dst = req.u16();
        const nwk = req.u16();
        if (isSelf(dst) && isSelf(nwk)) {
          const eps = [...dev.endpoints.keys()];
          answerLater(
            dev,
            0x85,
            new Writer()
              .u16(0x0000)
              .u8(Status.SUCCESS)
              .u16(0x0000)
              .u8(eps.length)
              .bytes(Buffer.from(eps))
              .build(),
          );
        }
        return status(Status.SUCCESS);
      },
    },
  ],
  [
    0x31,
    {
      name: "mgmtLqiReq",
      sreq: (dev, req) => {
        const dst = req.u16();
        const start = req.u8();
        if (isSelf(dst))
          answerLater(dev, 0xb1, new Writer().u16(0).u8(Status.SUCCESS).u8(0).u8(start).u8(0).build());
        return status(Status.SUCCESS);
      },
    },
  ],
  [
    0x32,
    {
      name: "mgmtRtgReq",
      sreq: (dev, req) => {
        const dst = req.u16();
        const start = req.u8();
        if (isSelf(dst))
          answerLater(dev, 0xb2, new Writer().u16(0).u8(Status.SUCCESS).u8(0).u8(start).u8(0).build());
        return status(Status.SUCCESS);
      },
    },
  ],
  [
    0x36,
    {
      name: "mgmtPermitJoinReq",
      sreq: (dev, req) => {
        const addrMode = req.u8();
        const dst = req.u16();
        const duration = req.u8();
        if (dev.devState !== DevState.ZB_COORD) return status(Status.FAILURE);
        dev.noteTransmission(1);
        if (addrMode === 0x02 && (dst === 0x0000 || dst === 0xfffc)) {
          answerLater(dev, 0xb6, new Writer().u16(0x0000).u8(Status.SUCCESS).build());
        }
        answerLater(dev, 0xcb, Buffer.from([duration]));
        return status(Status.SUCCESS);
      },
    },
  ],
  [
    0x37,
    {
      name: "mgmtNwkUpdateReq",
      sreq: (dev, req) => {
        req.u16(); // destination
        req.u8(); // address mode
        const mask = req.u32();
        const duration = req.u8();
        if (duration === 0xfe) {
          dev.noteTransmission(1);
          // the network moves after a broadcast delivery time
          dev.later(1000, () => dev.changeChannel(mask));
        }
        return status(Status.SUCCESS);
      },
    },
  ],
  [0x3e, { name: "msgCbRegister", sreq: () => status(Status.SUCCESS) }],
  [0x3f, { name: "msgCbRemove", sreq: () => status(Status.SUCCESS) }],
  [0x40, { name: "startupFromApp", sreq: (dev) => status(dev.startupFromApp()) }],
  [0x45, { name: "extRouteDisc", sreq: () => status(Status.SUCCESS) }],
  [
    0x47,
    {
      name: "extRemoveGroup",
      sreq: (dev, req) => {
        const endpoint = req.u8();
        const groupId = req.u16();
        const groups = readGroups(dev.nv);
        const kept = groups.filter((g) => !(g.endpoint === endpoint && g.groupId === groupId));
        if (kept.length === groups.length) return status(Status.FAILURE);
        writeGroups(dev.nv, kept);
        return status(Status.SUCCESS);
      },
    },
  ],
  [
    0x48,
    {
      name: "extRemoveAllGroup",
      sreq: (dev, req) => {
        const endpoint = req.u8();
        writeGroups(
          dev.nv,
          readGroups(dev.nv).filter((g) => g.endpoint !== endpoint),
        );
        return status(Status.SUCCESS);
      },
    },
  ],
  [
    0x49,
    {
      name: "extFindAllGroupsEndpoint",
      sreq: (dev, req) => {
        const endpoint = req.u8();
        const ids = readGroups(dev.nv)
          .filter((g) => g.endpoint === endpoint)
          .map((g) => g.groupId);
        const w = new Writer().u8(ids.length);
        for (const id of ids) w.u16(id);
        return w.build();
      },
    },
  ],
  [
    0x4a,
    {
      name: "extFindGroup",
      sreq: (dev, req) => {
        const endpoint = req.u8();
        const groupId = req.u16();
        const found = readGroups(dev.nv).find(
          (g: GroupRecord) => g.endpoint === endpoint && g.groupId === groupId,
        );
        // Always status + aps_Group_t (id u16, name[16] = length + 15 chars): 19 bytes. A short reply
        // makes herdsman's parser throw and the request time out.
        if (!found) return Buffer.concat([Buffer.from([Status.FAILURE]), Buffer.alloc(18)]);
        return new Writer().u8(Status.SUCCESS).u16(found.groupId).bytes(found.name.subarray(0, 16)).build();
      },
    },
  ],
  [
    0x4b,
    {
      name: "extAddGroup",
      sreq: (dev, req) => {
        const endpoint = req.u8();
        const groupId = req.u16();
        const nameLen = Math.min(req.u8(), 15);
        const nameChars = req.remaining >= nameLen ? req.bytes(nameLen) : Buffer.alloc(0);
        const groups = readGroups(dev.nv);
        if (groups.some((g) => g.endpoint === endpoint && g.groupId === groupId)) {
          return status(Status.APS_DUPLICATE_ENTRY);
        }
        const name = Buffer.alloc(16);
        name[0] = nameChars.length;
        nameChars.copy(name, 1);
        writeGroups(dev.nv, [...groups, { endpoint, groupId, name }]);
        return status(Status.SUCCESS);
      },
    },
  ],
  [0x4c, { name: "extCountAllGroups", sreq: (dev) => status(readGroups(dev.nv).length) }],
  [
    0x50,
    {
      name: "extNwkInfo",
      sreq: (dev) => {
        const nib = dev.nib();
        const w = new Writer().u16(ownShortAddress(dev)).u8(dev.devState);
        if (!nib) {
          return w.u16(0xffff).u16(0xffff).bytes(Buffer.alloc(8)).bytes(Buffer.alloc(8)).u8(0).build();
        }
        return w
          .u16(nib.readUInt16LE(NIB_OFFSET.nwkPanId))
          .u16(nib.readUInt16LE(NIB_OFFSET.nwkCoordAddress))
          .bytes(nib.subarray(NIB_OFFSET.extendedPANID, NIB_OFFSET.extendedPANID + 8))
          .bytes(nib.subarray(NIB_OFFSET.nwkCoordExtAddress, NIB_OFFSET.nwkCoordExtAddress + 8))
          .u8(nib[NIB_OFFSET.nwkLogicalChannel]!)
          .build();
      },
    },
  ],
];

export const ZDO_COMMANDS: CommandTable = new Map(commands);
