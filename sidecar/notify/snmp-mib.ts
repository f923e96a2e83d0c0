/**
 * ZIGBEE2MQTT-HA-MIB as data: the numbers below must match mibs/ZIGBEE2MQTT-HA-MIB.txt (a test
 * compares them with what snmptranslate reads from the file). Every OID is computed from the
 * module's root, so moving the MIB to another arc is one setting (snmp.enterprise_oid) plus the
 * regenerated file (scripts/mib-reroot.ts).
 */

/**
 * The MIB's root: IANA's documentation enterprise number (RFC 5612) with a sub-arc, a placeholder
 * until the project holds a Private Enterprise Number; mibs/README.md explains why.
 */
export const DEFAULT_ENTERPRISE_OID = "1.3.6.1.4.1.32473.8485";

export const MIB_MODULE = "ZIGBEE2MQTT-HA-MIB";

/** Arcs below the root (SMIv2 convention: notifications under .0). */
const NOTIFICATIONS_ARC = 0;
const OBJECTS_ARC = 1;

export type ObjectSyntax =
  /** OCTET STRING of ASCII, with a maximum length in bytes. */
  | { kind: "ascii"; maxBytes: number }
  /** OCTET STRING of UTF-8 text, cut at a character boundary. */
  | { kind: "utf8"; maxBytes: number }
  | { kind: "outcome" }
  | { kind: "unsigned32" }
  | { kind: "truthValue" };

export const OBJECTS = {
  z2mhaClusterName: { arc: 1, syntax: { kind: "utf8", maxBytes: 255 } },
  z2mhaNodeId: { arc: 2, syntax: { kind: "ascii", maxBytes: 32 } },
  z2mhaPreviousActiveNode: { arc: 3, syntax: { kind: "ascii", maxBytes: 32 } },
  z2mhaNewActiveNode: { arc: 4, syntax: { kind: "ascii", maxBytes: 32 } },
  z2mhaOperationId: { arc: 5, syntax: { kind: "ascii", maxBytes: 64 } },
  z2mhaOperationStep: { arc: 6, syntax: { kind: "ascii", maxBytes: 64 } },
  z2mhaOperationOutcome: { arc: 7, syntax: { kind: "outcome" } },
  z2mhaOperationDuration: { arc: 8, syntax: { kind: "unsigned32" } },
  z2mhaMessage: { arc: 9, syntax: { kind: "utf8", maxBytes: 255 } },
  z2mhaAutomaticFailover: { arc: 10, syntax: { kind: "truthValue" } },
  z2mhaMaintenanceMode: { arc: 11, syntax: { kind: "truthValue" } },
} as const satisfies Record<string, { arc: number; syntax: ObjectSyntax }>;

export type ObjectName = keyof typeof OBJECTS;

/** Z2mhaOutcome's enumeration. */
export const OUTCOMES = { succeeded: 1, failed: 2, rolledBack: 3, interrupted: 4 } as const;
export type Outcome = keyof typeof OUTCOMES;

/** The value each object takes in one notification. */
export interface ObjectValues {
  z2mhaClusterName: string;
  z2mhaNodeId: string;
  z2mhaPreviousActiveNode: string;
  z2mhaNewActiveNode: string;
  z2mhaOperationId: string;
  z2mhaOperationStep: string;
  z2mhaOperationOutcome: Outcome;
  z2mhaOperationDuration: number;
  z2mhaMessage: string;
  z2mhaAutomaticFailover: boolean;
  z2mhaMaintenanceMode: boolean;
}

const STARTED = [
  "z2mhaClusterName",
  "z2mhaOperationId",
  "z2mhaPreviousActiveNode",
  "z2mhaNewActiveNode",
  "z2mhaMessage",
] as const;
const SUCCEEDED = [
  "z2mhaClusterName",
  "z2mhaOperationId",
  "z2mhaPreviousActiveNode",
  "z2mhaNewActiveNode",
  "z2mhaOperationOutcome",
  "z2mhaOperationDuration",
  "z2mhaMessage",
] as const;
const FAILED = [
  "z2mhaClusterName",
  "z2mhaOperationId",
  "z2mhaPreviousActiveNode",
  "z2mhaNewActiveNode",
  "z2mhaOperationStep",
  "z2mhaOperationOutcome",
  "z2mhaOperationDuration",
  "z2mhaMessage",
] as const;
const NODE = ["z2mhaClusterName", "z2mhaNodeId", "z2mhaMessage"] as const;
const AUTOMATION = [
  "z2mhaClusterName",
  "z2mhaAutomaticFailover",
  "z2mhaMaintenanceMode",
  "z2mhaMessage",
] as const;

/** Each notification's number under the notifications arc and its OBJECTS clause, in order. */
export const NOTIFICATIONS = {
  z2mhaSwitchoverStarted: { arc: 1, objects: STARTED },
  z2mhaSwitchoverSucceeded: { arc: 2, objects: SUCCEEDED },
  z2mhaSwitchoverFailed: { arc: 3, objects: FAILED },
  z2mhaFailoverStarted: { arc: 4, objects: STARTED },
  z2mhaFailoverSucceeded: { arc: 5, objects: SUCCEEDED },
  z2mhaFailoverFailed: { arc: 6, objects: FAILED },
  z2mhaSyncSucceeded: {
    arc: 7,
    objects: [
      "z2mhaClusterName",
      "z2mhaOperationId",
      "z2mhaNodeId",
      "z2mhaOperationOutcome",
      "z2mhaOperationDuration",
      "z2mhaMessage",
    ],
  },
  z2mhaSyncFailed: {
    arc: 8,
    objects: [
      "z2mhaClusterName",
      "z2mhaOperationId",
      "z2mhaNodeId",
      "z2mhaOperationStep",
      "z2mhaOperationOutcome",
      "z2mhaOperationDuration",
      "z2mhaMessage",
    ],
  },
  z2mhaNodeUnreachable: { arc: 9, objects: NODE },
  z2mhaNodeReachable: { arc: 10, objects: NODE },
  z2mhaSplitBrainDetected: { arc: 11, objects: NODE },
  z2mhaAutomationPaused: { arc: 12, objects: AUTOMATION },
  z2mhaAutomationResumed: { arc: 13, objects: AUTOMATION },
  z2mhaStorageUnavailable: { arc: 14, objects: ["z2mhaClusterName", "z2mhaMessage"] },
  z2mhaStorageAvailable: { arc: 15, objects: ["z2mhaClusterName", "z2mhaMessage"] },
} as const satisfies Record<string, { arc: number; objects: readonly ObjectName[] }>;

export type NotificationName = keyof typeof NOTIFICATIONS;

export const NOTIFICATION_NAMES = Object.keys(NOTIFICATIONS) as NotificationName[];

export function notificationOid(root: string, name: NotificationName): string {
  return `${root}.${NOTIFICATIONS_ARC}.${NOTIFICATIONS[name].arc}`;
}

/** The OID of the object's only instance (scalars are sent with suffix .0). */
export function objectInstanceOid(root: string, name: ObjectName): string {
  return `${root}.${OBJECTS_ARC}.${OBJECTS[name].arc}.0`;
}

/**
 * The prototype's CUSTOM-SCRIPT-MIB trap, kept so that receivers configured for the bash scripts
 * go on working. Its OIDs sit under Net-SNMP's own arc (1.3.6.1.4.1.8072.2) and cannot move.
 */
export const PROTOTYPE = {
  module: "CUSTOM-SCRIPT-MIB",
  trapOid: "1.3.6.1.4.1.8072.2.1.1",
  objects: {
    scriptName: "1.3.6.1.4.1.8072.2.1.1.1.0",
    scriptHost: "1.3.6.1.4.1.8072.2.1.1.2.0",
    scriptMessage: "1.3.6.1.4.1.8072.2.1.1.3.0",
    scriptStatus: "1.3.6.1.4.1.8072.2.1.1.4.0",
  },
  /** scriptName is OCTET STRING (SIZE (1..32)) in the prototype's MIB. */
  scriptNameMaxBytes: 32,
} as const;

/** Checks a root OID: dotted decimal under enterprises, every sub-identifier within 32 bits. */
export function checkRootOid(oid: string): string | undefined {
  if (!/^1\.3\.6\.1\.4\.1(\.\d+)+$/.test(oid)) return "expected an OID under 1.3.6.1.4.1, e.g. 1.3.6.1.4.1.N";
  const tooBig = oid.split(".").find((part) => Number(part) > 0xffff_ffff || /^0\d/.test(part));
  if (tooBig !== undefined) return `sub-identifier ${tooBig} is not a number from 0 to 4294967295`;
  return undefined;
}
