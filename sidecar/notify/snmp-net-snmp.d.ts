/**
 * The part of net-snmp (which ships no types) that the SNMP notifier uses. Values are the
 * library's numeric constants; see node_modules/net-snmp/index.js.
 */
declare module "net-snmp" {
  import type { EventEmitter } from "node:events";

  export interface NetSnmpVarbind {
    oid: string;
    type: number;
    value: unknown;
  }

  export interface NetSnmpUser {
    name: string;
    level: number;
    authProtocol?: number;
    authKey?: string;
    privProtocol?: number;
    privKey?: string;
  }

  export interface NetSnmpSessionOptions {
    version?: number;
    port?: number;
    trapPort?: number;
    retries?: number;
    timeout?: number;
    backoff?: number;
    transport?: "udp4" | "udp6";
    engineID?: string | Buffer;
  }

  export type NetSnmpCallback = (error: Error | null, varbinds?: NetSnmpVarbind[]) => void;

  export interface NetSnmpSession extends EventEmitter {
    trap(typeOrOid: string, varbinds: NetSnmpVarbind[], callback: NetSnmpCallback): NetSnmpSession;
    inform(typeOrOid: string, varbinds: NetSnmpVarbind[], callback: NetSnmpCallback): NetSnmpSession;
    close(): NetSnmpSession;
  }

  const snmp: {
    createSession(target: string, community: string, options: NetSnmpSessionOptions): NetSnmpSession;
    createV3Session(target: string, user: NetSnmpUser, options: NetSnmpSessionOptions): NetSnmpSession;
    Version2c: number;
    Version3: number;
    ObjectType: Record<string, number>;
    SecurityLevel: Record<string, number>;
    AuthProtocols: Record<string, number>;
    PrivProtocols: Record<string, number>;
    RequestTimedOutError: new (message: string) => Error;
  };
  export default snmp;
}
