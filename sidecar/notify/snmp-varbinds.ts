import type { Z2mhaNotification } from "./snmp-events.js";
import {
  MIB_MODULE,
  NOTIFICATIONS,
  type NotificationName,
  notificationOid,
  OBJECTS,
  type ObjectName,
  type ObjectValues,
  OUTCOMES,
  objectInstanceOid,
  PROTOTYPE,
} from "./snmp-mib.js";

/** A variable binding in transport-neutral form; the session adapter maps the type names. */
export interface Varbind {
  oid: string;
  type: "OctetString" | "Integer" | "Gauge";
  value: Buffer | number;
}

/** What a target's queue holds: one PDU's worth, without sysUpTime.0 and snmpTrapOID.0 (added on send). */
export interface OutgoingNotification {
  mib: typeof MIB_MODULE | typeof PROTOTYPE.module;
  name: NotificationName;
  trapOid: string;
  varbinds: Varbind[];
}

const UINT32_MAX = 0xffff_ffff;

/** UTF-8 bytes of `text`, cut to at most `maxBytes` without splitting a character. */
export function utf8Cut(text: string, maxBytes: number): Buffer {
  const bytes = Buffer.from(text, "utf8");
  if (bytes.length <= maxBytes) return bytes;
  let end = maxBytes;
  // Back up over continuation bytes (10xxxxxx) to the start of the character that does not fit.
  while (end > 0 && ((bytes[end] as number) & 0xc0) === 0x80) end--;
  return bytes.subarray(0, end);
}

/** Printable ASCII only (the objects' DISPLAY-HINT is "a"); anything else becomes "?". */
export function asciiCut(text: string, maxBytes: number): Buffer {
  return Buffer.from(text.replace(/[^\x20-\x7e]/g, "?").slice(0, maxBytes), "ascii");
}

function varbind(root: string, name: ObjectName, values: ObjectValues): Varbind {
  const oid = objectInstanceOid(root, name);
  const syntax = OBJECTS[name].syntax;
  const value = values[name];
  switch (syntax.kind) {
    case "ascii":
      return { oid, type: "OctetString", value: asciiCut(String(value), syntax.maxBytes) };
    case "utf8":
      return { oid, type: "OctetString", value: utf8Cut(String(value), syntax.maxBytes) };
    case "outcome":
      return { oid, type: "Integer", value: OUTCOMES[value as keyof typeof OUTCOMES] };
    case "unsigned32": {
      const n = Math.round(Number(value));
      return { oid, type: "Gauge", value: Number.isFinite(n) ? Math.min(Math.max(n, 0), UINT32_MAX) : 0 };
    }
    case "truthValue":
      // SNMPv2-TC TruthValue: true(1), false(2).
      return { oid, type: "Integer", value: value ? 1 : 2 };
  }
}

/** The notification as ZIGBEE2MQTT-HA-MIB defines it, under `root`. */
export function toMibNotification(root: string, notification: Z2mhaNotification): OutgoingNotification {
  return {
    mib: MIB_MODULE,
    name: notification.name,
    trapOid: notificationOid(root, notification.name),
    varbinds: NOTIFICATIONS[notification.name].objects.map((object) =>
      varbind(root, object, notification.values),
    ),
  };
}

/** The same event as the prototype's CUSTOM-SCRIPT-MIB::netSnmpScriptResEntry trap. */
export function toPrototypeTrap(notification: Z2mhaNotification): OutgoingNotification {
  const string = (oid: string, value: Buffer): Varbind => ({ oid, type: "OctetString", value });
  return {
    mib: PROTOTYPE.module,
    name: notification.name,
    trapOid: PROTOTYPE.trapOid,
    varbinds: [
      string(
        PROTOTYPE.objects.scriptName,
        utf8Cut(notification.prototype.scriptName, PROTOTYPE.scriptNameMaxBytes),
      ),
      string(PROTOTYPE.objects.scriptHost, utf8Cut(notification.values.z2mhaClusterName, 255)),
      string(PROTOTYPE.objects.scriptMessage, utf8Cut(notification.values.z2mhaMessage, 255)),
      string(PROTOTYPE.objects.scriptStatus, Buffer.from(notification.prototype.scriptStatus, "ascii")),
    ],
  };
}
