/**
 * EZSP identifiers and EmberZNet values: protocol facts from UG100 and from zigbee-herdsman's ember
 * adapter (MIT), which mirrors the SDK's ezsp-enum.h / sl_status.h. Shared by the node tool's host
 * and the lab's simulated NCP (test/lab/simulator-ember/), so both speak from one table.
 */

/** EZSP protocol versions a host may talk (herdsman's EZSP_MIN_PROTOCOL_VERSION and EZSP_PROTOCOL_VERSION). */
export const EZSP_MIN_PROTOCOL_VERSION = 13;
export const EZSP_PROTOCOL_VERSION = 19;
/** From this version on statuses are sl_status_t (uint32); before, one-byte EmberStatus values. */
export const EZSP_SL_STATUS_VERSION = 14;

/** EZSP frame ids (UG100; herdsman `EzspFrameID`). Only those the simulator or the tool knows by name. */
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

/** `GET_EUI64` or the hex id. */
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

const SL_STATUS_NAMES = new Map<number, string>(Object.entries(SlStatus).map(([name, id]) => [id, name]));

/** `NOT_JOINED (0x0017)`: for error messages. */
export function slStatusName(code: number): string {
  const hex = `0x${code.toString(16).padStart(4, "0")}`;
  const name = SL_STATUS_NAMES.get(code);
  return name ? `${name} (${hex})` : hex;
}

/**
 * The one-byte EmberStatus values of EZSP v13 that a host compares, as sl_status_t (herdsman's
 * EMBER_TO_SL_STATUS_MAP has the same pairs). Others are passed on with LEGACY_STATUS_FLAG set, so
 * that an unknown EmberStatus is never mistaken for an sl_status_t with the same number.
 */
export const LEGACY_STATUS_TO_SL: ReadonlyMap<number, number> = new Map([
  [0x00, SlStatus.OK],
  [0x02, SlStatus.INVALID_PARAMETER],
  [0x70, SlStatus.INVALID_STATE],
  [0x90, SlStatus.NETWORK_UP],
  [0x91, SlStatus.NETWORK_DOWN],
  [0x93, SlStatus.NOT_JOINED],
  [0x9b, SlStatus.ZIGBEE_CHANNEL_CHANGED],
  [0x9c, SlStatus.ZIGBEE_NETWORK_OPENED],
  [0x9d, SlStatus.ZIGBEE_NETWORK_CLOSED],
  [0xa8, SlStatus.ZIGBEE_SECURITY_STATE_NOT_SET],
]);
export const LEGACY_STATUS_FLAG = 0x1000000;

export const EmberNetworkStatus = { NO_NETWORK: 0, JOINED_NETWORK: 2 } as const;
export const EmberNodeType = {
  UNKNOWN: 0,
  COORDINATOR: 1,
  ROUTER: 2,
  END_DEVICE: 3,
  SLEEPY_END_DEVICE: 4,
  S2S_INITIATOR: 5,
  S2S_TARGET: 6,
} as const;

const NODE_TYPE_NAMES = new Map<number, string>([
  [EmberNodeType.UNKNOWN, "unknown"],
  [EmberNodeType.COORDINATOR, "coordinator"],
  [EmberNodeType.ROUTER, "router"],
  [EmberNodeType.END_DEVICE, "end_device"],
  [EmberNodeType.SLEEPY_END_DEVICE, "sleepy_end_device"],
  [EmberNodeType.S2S_INITIATOR, "s2s_initiator"],
  [EmberNodeType.S2S_TARGET, "s2s_target"],
]);

export function nodeTypeName(type: number): string {
  return NODE_TYPE_NAMES.get(type) ?? `0x${type.toString(16).padStart(2, "0")}`;
}

/** EmberNetworkInitBitmask as herdsman (and ember-zli) pass it to networkInit. */
export const EmberNetworkInitBitmask = {
  NO_OPTIONS: 0x0000,
  PARENT_INFO_IN_TOKEN: 0x0001,
  END_DEVICE_REJOIN_ON_REBOOT: 0x0002,
} as const;

export const EmberLeaveNetworkOption = { WITH_NO_OPTION: 0x00 } as const;

/** An EUI64 token never programmed: flash reads all ones. */
export const EMBER_EUI64_BLANK = "ffffffffffffffff";

/** EZSP_STACK_PROFILE value of Zigbee PRO: ember-zli sets it before networkInit on a fresh NCP. */
export const STACK_PROFILE_ZIGBEE_PRO = 2;

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

/** EzspValueId entries (UG100) the simulator or the tool uses. */
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

/** EzspConfigId entries (UG100). */
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

/** EmberVersionType GA. */
export const VERSION_TYPE_GA = 0xaa;
/** Length of the EmberVersion struct GET_VALUE(VERSION_INFO) returns. */
export const VERSION_INFO_LENGTH = 7;
/** EZSP stack type "mesh", the only one herdsman accepts. */
export const STACK_TYPE_MESH = 0x02;
export const ZDO_PROFILE_ID = 0x0000;
