/**
 * The NCP stack's own ZDO server, for requests the host addresses to the coordinator itself
 * (herdsman interviews its coordinator: active endpoints, then each simple descriptor). Payloads
 * start with the ZDO transaction sequence number (the "message overhead" herdsman expects on EZSP).
 * Layouts: Zigbee specification §2.4.3/2.4.4, as herdsman's BuffaloZdo reads them.
 */

import { ByteReader, ByteWriter } from "../../../sidecar/coordinator/ember/ezsp-frame.js";
import type { ApsFrame } from "./ncp.js";

export interface ZdoSelf {
  nodeId: number;
  /** MSB first */
  eui64: string;
  manufacturerCode: number;
  endpoints: {
    endpoint: number;
    profileId: number;
    deviceId: number;
    deviceVersion: number;
    inClusters: number[];
    outClusters: number[];
  }[];
}

const Cluster = {
  NETWORK_ADDRESS: 0x0000,
  IEEE_ADDRESS: 0x0001,
  NODE_DESCRIPTOR: 0x0002,
  POWER_DESCRIPTOR: 0x0003,
  SIMPLE_DESCRIPTOR: 0x0004,
  ACTIVE_ENDPOINTS: 0x0005,
  LQI_TABLE: 0x0031,
  ROUTING_TABLE: 0x0032,
} as const;

const ZdoStatus = { SUCCESS: 0x00, INVALID_EP: 0x82, NOT_ACTIVE: 0x83, NOT_SUPPORTED: 0x84 } as const;

/** The response (APS frame and payload) the stack would deliver to the host, or nothing for non-ZDO traffic. */
export function answerZdoToSelf(
  aps: ApsFrame,
  message: Buffer,
  self: ZdoSelf,
): { aps: ApsFrame; payload: Buffer } | undefined {
  if (aps.profileId !== 0 || aps.clusterId >= 0x8000 || message.length < 1) return undefined;
  const r = new ByteReader(message);
  const tsn = r.u8();
  const w = new ByteWriter().u8(tsn);
  try {
    switch (aps.clusterId) {
      case Cluster.ACTIVE_ENDPOINTS: {
        w.u8(ZdoStatus.SUCCESS).u16(self.nodeId).u8(self.endpoints.length);
        for (const ep of self.endpoints) w.u8(ep.endpoint);
        break;
      }
      case Cluster.SIMPLE_DESCRIPTOR: {
        r.u16();
        const wanted = r.u8();
        const ep = self.endpoints.find((e) => e.endpoint === wanted);
        if (wanted === 0 || wanted === 0xff) {
          w.u8(ZdoStatus.INVALID_EP).u16(self.nodeId).u8(0);
          break;
        }
        if (!ep) {
          w.u8(ZdoStatus.NOT_ACTIVE).u16(self.nodeId).u8(0);
          break;
        }
        const desc = new ByteWriter()
          .u8(ep.endpoint)
          .u16(ep.profileId)
          .u16(ep.deviceId)
          .u8(ep.deviceVersion & 0x0f)
          .u8(ep.inClusters.length);
        for (const c of ep.inClusters) desc.u16(c);
        desc.u8(ep.outClusters.length);
        for (const c of ep.outClusters) desc.u16(c);
        w.u8(ZdoStatus.SUCCESS).u16(self.nodeId).payload(desc.build());
        break;
      }
      case Cluster.NODE_DESCRIPTOR: {
        w.u8(ZdoStatus.SUCCESS).u16(self.nodeId);
        // logical type coordinator; 2.4 GHz band; MAC capabilities: alt PAN coordinator, FFD, mains,
        // rx on when idle, allocate address; server mask: primary trust centre and network manager,
        // stack compliance revision 22.
        w.u8(0x00)
          .u8(0x40)
          .u8(0x8f)
          .u16(self.manufacturerCode)
          .u8(0x52)
          .u16(0x0080)
          .u16(0x2c41)
          .u16(0x0080)
          .u8(0x00);
        break;
      }
      case Cluster.POWER_DESCRIPTOR:
        // mode: on when idle; available source and current source: mains; level 100 %
        w.u8(ZdoStatus.SUCCESS).u16(self.nodeId).u8(0x10).u8(0xc1);
        break;
      case Cluster.IEEE_ADDRESS:
        w.u8(ZdoStatus.SUCCESS).eui64(self.eui64).u16(self.nodeId);
        break;
      case Cluster.NETWORK_ADDRESS: {
        const eui64 = r.eui64();
        if (eui64 !== self.eui64) return undefined; // another node's: nobody answers
        w.u8(ZdoStatus.SUCCESS).eui64(self.eui64).u16(self.nodeId);
        break;
      }
      case Cluster.LQI_TABLE:
      case Cluster.ROUTING_TABLE: {
        const start = r.remaining > 0 ? r.u8() : 0;
        w.u8(ZdoStatus.SUCCESS).u8(0).u8(start).u8(0);
        break;
      }
      default:
        w.u8(ZdoStatus.NOT_SUPPORTED);
    }
  } catch {
    return undefined;
  }
  return {
    aps: {
      profileId: 0,
      clusterId: aps.clusterId | 0x8000,
      sourceEndpoint: 0,
      destinationEndpoint: 0,
      options: 0,
      groupId: 0,
      sequence: aps.sequence,
    },
    payload: w.build(),
  };
}
