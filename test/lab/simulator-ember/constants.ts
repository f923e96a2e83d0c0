/**
 * What the simulated NCP image reports on its own: configuration defaults, the EZSP versions and
 * stacks it can pose as, counter and manufacturer defaults. The protocol identifiers themselves
 * (frame ids, statuses, value ids, token ids) are shared with the node tool's host:
 * sidecar/coordinator/ember/constants.ts.
 */
import { ConfigId } from "../../../sidecar/coordinator/ember/constants.js";

/** EzspConfigId entries with the values a stock NCP image reports (herdsman only sets most of them). */
export const DEFAULT_CONFIG: ReadonlyMap<number, number> = new Map([
  [ConfigId.PACKET_BUFFER_HEAP_SIZE, 0x0f2c],
  [ConfigId.NEIGHBOR_TABLE_SIZE, 16],
  [ConfigId.APS_UNICAST_MESSAGE_COUNT, 32],
  [ConfigId.BINDING_TABLE_SIZE, 32],
  [ConfigId.ADDRESS_TABLE_SIZE, 16],
  [ConfigId.MULTICAST_TABLE_SIZE, 16],
  [ConfigId.ROUTE_TABLE_SIZE, 16],
  [ConfigId.DISCOVERY_TABLE_SIZE, 8],
  [ConfigId.STACK_PROFILE, 2],
  [ConfigId.SECURITY_LEVEL, 5],
  [ConfigId.MAX_HOPS, 30],
  [ConfigId.MAX_END_DEVICE_CHILDREN, 32],
  [ConfigId.INDIRECT_TRANSMISSION_TIMEOUT, 7680],
  [ConfigId.END_DEVICE_POLL_TIMEOUT, 8],
  [ConfigId.TRUST_CENTER_ADDRESS_CACHE_SIZE, 2],
  [ConfigId.SOURCE_ROUTE_TABLE_SIZE, 200],
  [ConfigId.KEY_TABLE_SIZE, 12],
  [ConfigId.SUPPORTED_NETWORKS, 1],
  [ConfigId.TRANSIENT_KEY_TIMEOUT_S, 300],
]);

/** EZSP protocol versions the simulator can speak (same frame layouts from v14 on) and the stack each came with. */
export const EZSP_VERSIONS: ReadonlyMap<
  number,
  { major: number; minor: number; patch: number; build: number }
> = new Map([
  // EmberZNet 8.0.x introduced v14 (sl_status_t everywhere); 8.1.0 skipped v15 (bellows #662).
  [14, { major: 8, minor: 0, patch: 2, build: 0 }],
  [16, { major: 8, minor: 1, patch: 0, build: 0 }],
  [17, { major: 8, minor: 2, patch: 0, build: 0 }],
  [18, { major: 8, minor: 2, patch: 2, build: 0 }],
]);

export const DEFAULT_EZSP_VERSION = 14;

/** Number of EmberCounterType entries READ_AND_CLEAR_COUNTERS returns. */
export const COUNTER_COUNT = 42;

/** Silicon Labs' manufacturer code, the NCP's default until the host sets another. */
export const SILABS_MANUFACTURER_CODE = 0x1002;
