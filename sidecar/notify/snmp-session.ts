import { createHash } from "node:crypto";
import { isIPv6 } from "node:net";
import snmp, { type NetSnmpSession, type NetSnmpVarbind } from "net-snmp";
import type { SnmpTargetConfig } from "../config/schema.js";
import type { OutgoingNotification } from "./snmp-varbinds.js";

/**
 * Sends notifications to one target. `send` calls `done` exactly once: with null when the trap
 * left the socket or the inform was acknowledged, with an error otherwise. Fakes implement this
 * in unit tests; `createNetSnmpSender` is the real one.
 */
export interface NotificationSender {
  send(notification: OutgoingNotification, done: (error: Error | null) => void): void;
  close(): void;
}

export type SenderFactory = (target: SnmpTargetConfig, engineId: string) => NotificationSender;

/**
 * The engine id of our SNMPv3 engine when the target's user names none: RFC 3411 format 5
 * (octets), the enterprise number taken from the MIB's root, then 12 bytes derived from the
 * cluster name. Stable across restarts, so a receiver's `createUser -e <id>` keeps matching (the
 * library's own default is random per process, which no trap receiver could be configured for).
 */
export function deriveEngineId(enterpriseOid: string, clusterName: string): string {
  const enterprise = Number(enterpriseOid.split(".")[6] ?? 0);
  const head = Buffer.alloc(5);
  head.writeUInt32BE((0x8000_0000 | enterprise) >>> 0, 0);
  head.writeUInt8(5, 4);
  const tail = createHash("sha256").update(`zigbee2mqtt-ha\0${clusterName}`).digest().subarray(0, 12);
  return Buffer.concat([head, tail]).toString("hex");
}

function toNetSnmp(notification: OutgoingNotification): NetSnmpVarbind[] {
  return notification.varbinds.map((v) => ({
    oid: v.oid,
    type: snmp.ObjectType[v.type] as number,
    value: v.value,
  }));
}

/**
 * A net-snmp session for one configured target. net-snmp adds sysUpTime.0 and snmpTrapOID.0 in
 * front of the varbinds, and runs the inform's timeout and retries itself.
 */
export function createNetSnmpSender(
  target: SnmpTargetConfig,
  engineId: string,
  onSocketError: (error: unknown) => void = () => {},
): NotificationSender {
  const options = {
    // net-snmp sends v3 informs after the first one to `port`, not `trapPort`: set both.
    port: target.port,
    trapPort: target.port,
    retries: target.retries,
    timeout: target.timeout,
    transport: isIPv6(target.host) ? ("udp6" as const) : ("udp4" as const),
  };
  let session: NetSnmpSession;
  if (target.version === "3") {
    const user = target.user;
    if (!user) throw new Error("SNMPv3 target without a user");
    session = snmp.createV3Session(
      target.host,
      {
        name: user.name,
        level: snmp.SecurityLevel[user.level] as number,
        authProtocol: snmp.AuthProtocols[user.auth_protocol],
        authKey: user.auth_key?.reveal(),
        privProtocol: snmp.PrivProtocols[user.priv_protocol],
        privKey: user.priv_key?.reveal(),
      },
      { ...options, engineID: engineId },
    );
  } else {
    session = snmp.createSession(target.host, target.community?.reveal() ?? "public", {
      ...options,
      version: snmp.Version2c,
    });
  }
  // A datagram the library cannot parse is emitted as "error"; unhandled, it would crash the sidecar.
  session.on("error", onSocketError);

  return {
    send(notification, done) {
      let settled = false;
      const once = (error: Error | null) => {
        if (settled) return;
        settled = true;
        done(error);
      };
      try {
        const varbinds = toNetSnmp(notification);
        if (target.inform) session.inform(notification.trapOid, varbinds, (error) => once(error));
        else session.trap(notification.trapOid, varbinds, (error) => once(error));
      } catch (error) {
        once(error instanceof Error ? error : new Error(String(error)));
      }
    },
    close() {
      try {
        session.close();
      } catch {
        // Already closed: nothing left to release.
      }
    },
  };
}
