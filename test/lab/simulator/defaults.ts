/**
 * What a CC2652 running Z-Stack 3.x.0 puts into an empty NV on boot, taken from a real chip's dump
 * after `nvram_reset` and a reboot (/work/shared/data/nvram/CC2652R-ZStack4.reset.json), and the
 * shapes the stack writes when it forms a network.
 */
import { randomBytes } from "node:crypto";
import { LEGACY_ID_BY_NAME } from "./nv-ids.js";

type DefaultValue = string | "hardware-ieee" | "extaddr" | "random16";

interface DefaultItem {
  id: number;
  value: DefaultValue;
  /** Restored to this value when STARTUP_OPTION bit 0x01 (default config state) is acted on. */
  config: boolean;
}

function item(name: string, value: DefaultValue, config = true): DefaultItem {
  const id = LEGACY_ID_BY_NAME.get(name);
  if (id === undefined) throw new Error(`unknown NV item ${name}`);
  return { id, value, config };
}

/**
 * Items the firmware creates when they are missing, in the order of the real dump. POLL_RATE_OLD16
 * is absent on purpose: it is not stored, MT proxies it to the low 16 bits of POLL_RATE.
 */
export const DEFAULT_LEGACY_ITEMS: readonly DefaultItem[] = [
  item("EXTADDR", "hardware-ieee", false),
  // A freshly created STARTUP_OPTION holds 0x02 ("default network state"), as in the real dump.
  item("STARTUP_OPTION", "02", false),
  item("START_DELAY", "0a"),
  item("POLL_RATE", "b80b0000b8010000640000006400000000000000e803000000000000000000008459002001000000"),
  item("DATA_RETRIES", "02"),
  item("POLL_FAILURE_RETRIES", "03"),
  item("STACK_PROFILE", "02"),
  item("INDIRECT_MSG_TIMEOUT", "14"),
  item("ROUTE_EXPIRY_TIME", "1e"),
  item("EXTENDED_PAN_ID", "extaddr"),
  item("BCAST_RETRIES", "02"),
  item("PASSIVE_ACK_TIMEOUT", "05"),
  item("BCAST_DELIVERY_TIME", "1e"),
  item("CONCENTRATOR_ENABLE", "01"),
  item("CONCENTRATOR_DISCOVERY", "78"),
  item("CONCENTRATOR_RADIUS", "0a"),
  item("CONCENTRATOR_RC", "01"),
  item("NWK_MGR_MODE", "01"),
  item("SRC_RTG_EXPIRY_TIME", "ff"),
  item("ROUTE_DISCOVERY_TIME", "05"),
  item("NWK_ACTIVE_KEY_INFO", "00".repeat(17), false),
  item("NWK_ALTERN_KEY_INFO", "00".repeat(17), false),
  item("ROUTER_OFF_ASSOC_CLEANUP", "00"),
  item("NWK_LEAVE_REQ_ALLOWED", "01"),
  item("NWK_CHILD_AGE_ENABLE", "00"),
  item("APS_FRAME_RETRIES", "03"),
  item("APS_ACK_WAIT_DURATION", "b80b"),
  item("APS_ACK_WAIT_MULTIPLIER", "02"),
  item("BINDING_TIME", "803e"),
  item("APS_USE_EXT_PANID", "00".repeat(8)),
  item("APS_USE_INSECURE_JOIN", "01"),
  item("COMMISSIONED_NWK_ADDR", "feff"),
  item("APS_NONMEMBER_RADIUS", "02"),
  item("APS_DUPREJ_TIMEOUT_INC", "e803"),
  item("APS_DUPREJ_TIMEOUT_COUNT", "0a"),
  item("APS_DUPREJ_TABLE_SIZE", "0500"),
  item("NWK_PARENT_INFO", "01"),
  item("NWK_ENDDEV_TIMEOUT_DEF", "08"),
  item("END_DEV_TIMEOUT_VALUE", "08"),
  item("END_DEV_CONFIGURATION", "00"),
  item("BDBNODEISONANETWORK", "00", false),
  item("PRECFGKEY", "random16", false),
  item("PRECFGKEYS_ENABLE", "00"),
  item("SECURE_PERMIT_JOIN", "01"),
  item("APS_LINK_KEY_TYPE", "01"),
  item("APS_ALLOW_R19_SECURITY", "00"),
  item("USE_DEFAULT_TCLK", "01"),
  item("TRUSTCENTER_ADDR", "00".repeat(8)),
  item("USERDESC", "00".repeat(17)),
  item("NWKKEY", "00".repeat(24), false),
  item("PANID", "ffff"),
  item("CHANLIST", "00000000"),
  item("SCAN_DURATION", "04"),
  item("LOGICAL_TYPE", "00"),
  item("NWKMGR_MIN_TX", "14"),
  item("ZDO_DIRECT_CB", "01"),
  item("SAPI_ENDPOINT", "e0"),
  item("TCLK_SEED", "random16", false),
];

/** Resolve a default item's bytes; `extAddr` is the NV EXTADDR as it stands (LE). */
export function defaultValue(entry: DefaultItem, hardwareIeee: Buffer, extAddr: Buffer): Buffer {
  switch (entry.value) {
    case "hardware-ieee":
      return Buffer.from(hardwareIeee);
    case "extaddr":
      return Buffer.from(extAddr);
    case "random16":
      return randomBytes(16);
    default:
      return Buffer.from(entry.value, "hex");
  }
}

/** Extended tables present on a blank chip: [itemId, entry count, empty entry]. */
export const DEFAULT_TABLES: ReadonlyArray<readonly [number, number, string]> = [
  // TCLK_TABLE: {txFrmCntr u32, rxFrmCntr u32, extAddr[8], keyAttributes, keyType, SeedShift, pad};
  // keyAttributes 0xFF marks an unused entry.
  [0x0004, 200, `${"00".repeat(16)}ff000000`],
  // APS_KEY_DATA_TABLE: {key[16], txFrmCntr u32, rxFrmCntr u32}.
  [0x0006, 3, "00".repeat(24)],
  // NWK_SEC_MATERIAL_TABLE: {FrameCounter u32, extendedPanID[8]}.
  [0x0007, 5, "00".repeat(12)],
];

/** Tables the stack creates when it forms a network. */
export const FORMATION_TABLES: ReadonlyArray<readonly [number, number, string]> = [
  // ADDRMGR: {user, pad, nwkAddr u16, extAddr[8]}; all 0xFF when unused.
  [0x0001, 257, "ff".repeat(12)],
];

/** APS_LINK_KEY_TABLE (0x004C) as created at formation: `u16 used` + 3 × {ami, keyNvId, auth, pad}. */
export const EMPTY_APS_LINK_KEY_TABLE = "00".repeat(20);

/**
 * A NIB as a CC2652R formed it (from the real formed dump), used as the template for formation;
 * the network-specific fields are overwritten. Offsets follow the aligned (CC26xx) layout.
 */
export const NIB_TEMPLATE =
  "600502330f33001e0000000105018f000700020d1e0000000f000000000000000000000002440800008000000f0f04000100000001000000" +
  "00a083e6b5a838baa2010000000000000000000000000000000000000000000000000000000000000000000000000f050001780a0100000000000000";

export const NIB_LENGTH = 116;

/** Byte offsets of the NIB fields the simulator reads or writes (aligned layout, 116 bytes). */
export const NIB_OFFSET = {
  SecurityLevel: 12,
  nwkDevAddress: 22,
  nwkLogicalChannel: 24,
  nwkCoordAddress: 26,
  nwkCoordExtAddress: 28,
  nwkPanId: 36,
  nwkState: 38,
  channelList: 40,
  extendedPANID: 57,
  nwkKeyLoaded: 65,
  nwkManagerAddr: 110,
  nwkUpdateId: 114,
} as const;
