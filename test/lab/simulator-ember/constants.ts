/**
 * EZSP identifiers and the EmberZNet values the simulator uses: protocol facts from UG100 and from
 * zigbee-herdsman's ember adapter (MIT), which mirrors the SDK's ezsp-enum.h / sl_status.h.
 */

/** EZSP frame ids (UG100; herdsman `EzspFrameID`). Only those the simulator knows by name. */
export const FrameId = {
  VERSION: 0x0000,
  GET_LIBRARY_STATUS: 0x0001,
  ADD_ENDPOINT: 0x0002,
  GET_EXTENDED_VALUE: 0x0003,
  NOP: 0x0005,
  GET_MFG_TOKEN: 0x000b,
  SET_MFG_TOKEN: 0x000c,
  SET_CONCENTRATOR: 0x0010,
  SET_MANUFACTURER_CODE: 0x0015,
  NETWORK_INIT: 0x0017,
  NETWORK_STATE: 0x0018,
  STACK_STATUS_HANDLER: 0x0019,
  FORM_NETWORK: 0x001e,
  LEAVE_NETWORK: 0x0020,
  PERMIT_JOINING: 0x0022,
  GET_EUI64: 0x0026,
  GET_NODE_ID: 0x0027,
  GET_NETWORK_PARAMETERS: 0x0028,
  SEND_UNICAST: 0x0034,
  SEND_BROADCAST: 0x0036,
  SEND_MULTICAST: 0x0038,
  MESSAGE_SENT_HANDLER: 0x003f,
  INCOMING_MESSAGE_HANDLER: 0x0045,
  GET_CONFIGURATION_VALUE: 0x0052,
  SET_CONFIGURATION_VALUE: 0x0053,
  SET_POLICY: 0x0055,
  GET_POLICY: 0x0056,
  INVALID_COMMAND: 0x0058,
  SET_SOURCE_ROUTE_DISCOVERY_MODE: 0x005a,
  GET_MULTICAST_TABLE_ENTRY: 0x0063,
  SET_MULTICAST_TABLE_ENTRY: 0x0064,
  READ_AND_CLEAR_COUNTERS: 0x0065,
  SET_INITIAL_SECURITY_STATE: 0x0068,
  CLEAR_TRANSIENT_LINK_KEYS: 0x006b,
  ERASE_KEY_TABLE_ENTRY: 0x0076,
  TOKEN_FACTORY_RESET: 0x0077,
  ECHO: 0x0081,
  SET_RADIO_POWER: 0x0099,
  GET_VALUE: 0x00aa,
  SET_VALUE: 0x00ab,
  CLEAR_KEY_TABLE: 0x00b1,
  SET_LOGICAL_AND_RADIO_CHANNEL: 0x00b9,
  GET_MANUFACTURER_CODE: 0x00ca,
  READ_COUNTERS: 0x00f1,
  GET_RADIO_CHANNEL: 0x00ff,
  RESET_NODE: 0x0104,
  GET_APS_KEY_INFO: 0x010c,
  IMPORT_LINK_KEY: 0x010e,
  EXPORT_LINK_KEY_BY_INDEX: 0x010f,
  IMPORT_TRANSIENT_KEY: 0x0111,
  EXPORT_KEY: 0x0114,
  GET_NETWORK_KEY_INFO: 0x0116,
  GET_PERMIT_JOINING: 0x011f,
  GET_EXTENDED_PAN_ID: 0x0127,
} as const;

const FRAME_NAMES = new Map<number, string>(Object.entries(FrameId).map(([name, id]) => [id, name]));

export function frameName(id: number): string {
  return FRAME_NAMES.get(id) ?? `0x${id.toString(16).padStart(4, "0")}`;
}

/** EzspStatus (UG100): the transport's own statuses, carried by INVALID_COMMAND. */
export const EzspStatus = {
  SUCCESS: 0x00,
  ERROR_VERSION_NOT_SET: 0x30,
  ERROR_INVALID_FRAME_ID: 0x31,
  ERROR_WRONG_DIRECTION: 0x32,
  ERROR_INVALID_VALUE: 0x36,
  ERROR_INVALID_ID: 0x37,
  ERROR_INVALID_CALL: 0x38,
  ERROR_UNSUPPORTED_CONTROL: 0x49,
} as const;

/** sl_status_t values (EZSP v14+ reports these as uint32). */
export const SlStatus = {
  OK: 0x0000,
  FAIL: 0x0001,
  INVALID_STATE: 0x0002,
  NOT_READY: 0x0003,
  NOT_SUPPORTED: 0x000f,
  NETWORK_UP: 0x0015,
  NETWORK_DOWN: 0x0016,
  NOT_JOINED: 0x0017,
  INVALID_PARAMETER: 0x0021,
  INVALID_INDEX: 0x0027,
  NOT_FOUND: 0x002d,
  ALREADY_EXISTS: 0x002e,
  FLASH_WRITE_INHIBITED: 0x003b,
  ZIGBEE_DELIVERY_FAILED: 0x0c02,
  ZIGBEE_SECURITY_STATE_NOT_SET: 0x0c0b,
  ZIGBEE_CHANNEL_CHANGED: 0x0c17,
  ZIGBEE_NETWORK_OPENED: 0x0c18,
  ZIGBEE_NETWORK_CLOSED: 0x0c19,
} as const;

export const EmberNetworkStatus = { NO_NETWORK: 0, JOINED_NETWORK: 2 } as const;
export const EmberNodeType = { UNKNOWN: 0, COORDINATOR: 1 } as const;

/** sl_zigbee_sec_man_key_type_t */
export const SecManKeyType = { NONE: 0, NETWORK: 1, TC_LINK: 2, APP_LINK: 4 } as const;

export const EmberInitialSecurityBitmask = { NO_FRAME_COUNTER_RESET: 0x1000 } as const;

export const EmberOutgoingMessageType = {
  DIRECT: 0,
  VIA_ADDRESS_TABLE: 1,
  VIA_BINDING: 2,
  MULTICAST: 3,
  MULTICAST_WITH_ALIAS: 4,
  BROADCAST_WITH_ALIAS: 5,
  BROADCAST: 6,
} as const;

export const EmberIncomingMessageType = { UNICAST: 0 } as const;

/** EzspValueId entries the simulator stores or answers. */
export const ValueId = {
  STACK_TOKEN_WRITING: 7,
  EXTENDED_SECURITY_BITMASK: 10,
  NODE_SHORT_ID: 11,
  VERSION_INFO: 17,
  CCA_THRESHOLD: 21,
  NWK_FRAME_COUNTER: 35,
  APS_FRAME_COUNTER: 36,
  TRANSIENT_DEVICE_TIMEOUT: 67,
} as const;

export const ExtendedValueId = { ENDPOINT_FLAGS: 0 } as const;

/** EzspConfigId entries with the values a stock NCP image reports (herdsman only sets most of them). */
export const ConfigId = {
  PACKET_BUFFER_HEAP_SIZE: 1,
  NEIGHBOR_TABLE_SIZE: 2,
  APS_UNICAST_MESSAGE_COUNT: 3,
  BINDING_TABLE_SIZE: 4,
  ADDRESS_TABLE_SIZE: 5,
  MULTICAST_TABLE_SIZE: 6,
  ROUTE_TABLE_SIZE: 7,
  DISCOVERY_TABLE_SIZE: 8,
  STACK_PROFILE: 12,
  SECURITY_LEVEL: 13,
  MAX_HOPS: 16,
  MAX_END_DEVICE_CHILDREN: 17,
  INDIRECT_TRANSMISSION_TIMEOUT: 18,
  END_DEVICE_POLL_TIMEOUT: 19,
  TRUST_CENTER_ADDRESS_CACHE_SIZE: 25,
  SOURCE_ROUTE_TABLE_SIZE: 26,
  KEY_TABLE_SIZE: 30,
  SUPPORTED_NETWORKS: 45,
  TRANSIENT_KEY_TIMEOUT_S: 54,
} as const;

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

/** EzspMfgTokenId with the length GET_MFG_TOKEN reports for each (herdsman's ezspGetMfgToken). */
export const MfgToken = {
  CUSTOM_VERSION: 0,
  STRING: 1,
  BOARD_NAME: 2,
  MANUF_ID: 3,
  PHY_CONFIG: 4,
  ASH_CONFIG: 6,
  CBKE_DATA: 9,
  INSTALLATION_CODE: 10,
  CUSTOM_EUI_64: 12,
  CTUNE: 13,
} as const;

export const MFG_TOKEN_LENGTH: ReadonlyMap<number, number> = new Map([
  [MfgToken.CUSTOM_VERSION, 2],
  [MfgToken.STRING, 16],
  [MfgToken.BOARD_NAME, 16],
  [MfgToken.MANUF_ID, 2],
  [MfgToken.PHY_CONFIG, 2],
  [MfgToken.ASH_CONFIG, 40],
  [MfgToken.CBKE_DATA, 92],
  [MfgToken.INSTALLATION_CODE, 20],
  [MfgToken.CUSTOM_EUI_64, 8],
  [MfgToken.CTUNE, 2],
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

/** EmberVersionType GA. */
export const VERSION_TYPE_GA = 0xaa;
/** EZSP stack type "mesh", the only one herdsman accepts. */
export const STACK_TYPE_MESH = 0x02;
/** Number of EmberCounterType entries READ_AND_CLEAR_COUNTERS returns. */
export const COUNTER_COUNT = 42;

export const ZDO_PROFILE_ID = 0x0000;
/** Silicon Labs' manufacturer code, the NCP's default until the host sets another. */
export const SILABS_MANUFACTURER_CODE = 0x1002;
