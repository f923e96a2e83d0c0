/**
 * The EZSP commands the node tool sends, with the parameter and response layouts of UG100 as
 * zigbee-herdsman's ember adapter (ezsp.ts, buffalo.ts) reads them. Statuses are sl_status_t
 * (uint32) from EZSP v14 on and one-byte EmberStatus values before; they are returned as
 * sl_status_t either way, so callers compare against SlStatus only.
 */
import {
  ConfigId,
  EMBER_EUI64_BLANK,
  EmberLeaveNetworkOption,
  EmberNetworkInitBitmask,
  EZSP_SL_STATUS_VERSION,
  FrameId,
  LEGACY_STATUS_FLAG,
  LEGACY_STATUS_TO_SL,
  MfgToken,
  SlStatus,
  STACK_PROFILE_ZIGBEE_PRO,
  slStatusName,
  ValueId,
  VERSION_INFO_LENGTH,
} from "./constants.js";
import { ByteReader, ByteWriter, type EzspIncoming } from "./ezsp-frame.js";
import { EzspError, type EzspHost } from "./host.js";

export interface NetworkParameters {
  status: number;
  nodeType: number;
  /** The 8 bytes as the stack holds them, hex: coordinator_backup.json's `extended_pan_id`. */
  extendedPanId: string;
  panId: number;
  radioTxPower: number;
  channel: number;
  joinMethod: number;
  nwkManagerId: number;
  nwkUpdateId: number;
  channels: number;
}

export interface NetworkKeyInfo {
  status: number;
  networkKeySet: boolean;
  alternateNetworkKeySet: boolean;
  sequenceNumber: number;
  alternateSequenceNumber: number;
  /** The outgoing NWK frame counter of the current network key (what herdsman's backup stores). */
  frameCounter: number;
}

/** Typed EZSP commands over a connected host whose version has been negotiated. */
export class EzspCommands {
  constructor(
    readonly host: EzspHost,
    private readonly timeoutMs?: () => number,
  ) {}

  private send(frameId: number, parameters?: Buffer): Promise<ByteReader> {
    return this.host
      .command(frameId, parameters, { timeoutMs: this.timeoutMs?.() })
      .then((p) => new ByteReader(p));
  }

  /** A status field in the width the negotiated version uses, as sl_status_t. */
  readStatus(r: ByteReader): number {
    if (this.host.ezspVersion >= EZSP_SL_STATUS_VERSION) return r.u32();
    const code = r.u8();
    return LEGACY_STATUS_TO_SL.get(code) ?? LEGACY_STATUS_FLAG | code;
  }

  statusText(status: number): string {
    if (status & LEGACY_STATUS_FLAG) return `EmberStatus 0x${(status & 0xff).toString(16).padStart(2, "0")}`;
    return slStatusName(status);
  }

  /** GET_VALUE(VERSION_INFO): `major.minor.patch.special` and the build number. */
  async stackVersion(): Promise<{ version: string; build: number; type: number }> {
    const r = await this.send(FrameId.GET_VALUE, Buffer.from([ValueId.VERSION_INFO]));
    const status = this.readStatus(r);
    if (status !== SlStatus.OK)
      throw new EzspError(`GET_VALUE(VERSION_INFO) failed: ${this.statusText(status)}`);
    const value = new ByteReader(r.payload());
    if (value.remaining !== VERSION_INFO_LENGTH)
      throw new EzspError(
        `GET_VALUE(VERSION_INFO) returned ${value.remaining} bytes, not ${VERSION_INFO_LENGTH}`,
      );
    const build = value.u16();
    const parts = [value.u8(), value.u8(), value.u8(), value.u8()];
    return { version: parts.join("."), build, type: value.u8() };
  }

  /** The EUI64 the running stack uses (read at boot: the custom token if written), MSB first hex. */
  async eui64(): Promise<string> {
    return (await this.send(FrameId.GET_EUI64)).eui64();
  }

  async mfgToken(tokenId: number): Promise<Buffer> {
    return (await this.send(FrameId.GET_MFG_TOKEN, Buffer.from([tokenId]))).payload();
  }

  /** MFG_CUSTOM_EUI_64, MSB first hex, or null while blank (all 0xFF: flash never programmed). */
  async customEui64Token(): Promise<string | null> {
    const data = await this.mfgToken(MfgToken.CUSTOM_EUI_64);
    if (data.length !== 8)
      throw new EzspError(`GET_MFG_TOKEN(CUSTOM_EUI_64) returned ${data.length} bytes, not 8`);
    const eui64 = Buffer.from(data).reverse().toString("hex");
    return eui64 === EMBER_EUI64_BLANK ? null : eui64;
  }

  /**
   * SET_MFG_TOKEN(CUSTOM_EUI_64): the token is sent in EZSP's EUI64 order (least significant byte
   * first), the order GET_EUI64 and GET_MFG_TOKEN use. Returns the status.
   */
  async setCustomEui64Token(eui64: string): Promise<number> {
    const data = Buffer.from(eui64, "hex").reverse();
    const r = await this.send(
      FrameId.SET_MFG_TOKEN,
      new ByteWriter().u8(MfgToken.CUSTOM_EUI_64).payload(data).build(),
    );
    return this.readStatus(r);
  }

  async setConfigurationValue(configId: number, value: number): Promise<number> {
    return this.readStatus(
      await this.send(FrameId.SET_CONFIGURATION_VALUE, new ByteWriter().u8(configId).u16(value).build()),
    );
  }

  /**
   * NETWORK_INIT as herdsman and ember-zli send it (after setting the stack profile, which ember-zli
   * calls the minimum for a proper network init on a freshly reset NCP). OK: the stack comes up
   * from its tokens and a NETWORK_UP stack status follows; NOT_JOINED: no network in the tokens.
   */
  async networkInit(): Promise<number> {
    const profile = await this.setConfigurationValue(ConfigId.STACK_PROFILE, STACK_PROFILE_ZIGBEE_PRO);
    if (profile !== SlStatus.OK)
      throw new EzspError(`SET_CONFIGURATION_VALUE(STACK_PROFILE) failed: ${this.statusText(profile)}`);
    const bitmask =
      EmberNetworkInitBitmask.PARENT_INFO_IN_TOKEN | EmberNetworkInitBitmask.END_DEVICE_REJOIN_ON_REBOOT;
    return this.readStatus(await this.send(FrameId.NETWORK_INIT, new ByteWriter().u16(bitmask).build()));
  }

  async networkParameters(): Promise<NetworkParameters> {
    const r = await this.send(FrameId.GET_NETWORK_PARAMETERS);
    return {
      status: this.readStatus(r),
      nodeType: r.u8(),
      extendedPanId: r.bytes(8).toString("hex"),
      panId: r.u16(),
      radioTxPower: r.i8(),
      channel: r.u8(),
      joinMethod: r.u8(),
      nwkManagerId: r.u16(),
      nwkUpdateId: r.u8(),
      channels: r.u32(),
    };
  }

  /** GET_NETWORK_KEY_INFO: its status is an sl_status_t in every version (herdsman reads a uint32). */
  async networkKeyInfo(): Promise<NetworkKeyInfo> {
    const r = await this.send(FrameId.GET_NETWORK_KEY_INFO);
    return {
      status: r.u32(),
      networkKeySet: r.u8() !== 0,
      alternateNetworkKeySet: r.u8() !== 0,
      sequenceNumber: r.u8(),
      alternateSequenceNumber: r.u8(),
      frameCounter: r.u32(),
    };
  }

  /**
   * TOKEN_FACTORY_RESET: the stack's tokens erased without the network being started (no radio).
   * The outgoing frame counter and boot counter may be kept; the manufacturing tokens (the custom
   * EUI64) are never touched by it.
   */
  async tokenFactoryReset(excludeOutgoingFrameCounter: boolean, excludeBootCounter: boolean): Promise<void> {
    await this.send(
      FrameId.TOKEN_FACTORY_RESET,
      Buffer.from([excludeOutgoingFrameCounter ? 1 : 0, excludeBootCounter ? 1 : 0]),
    );
  }

  /** LEAVE_NETWORK; from v14 on it takes an options byte. NETWORK_DOWN follows as a stack status. */
  async leaveNetwork(): Promise<number> {
    const parameters =
      this.host.ezspVersion >= EZSP_SL_STATUS_VERSION
        ? Buffer.from([EmberLeaveNetworkOption.WITH_NO_OPTION])
        : Buffer.alloc(0);
    return this.readStatus(await this.send(FrameId.LEAVE_NETWORK, parameters));
  }

  /** The status a STACK_STATUS_HANDLER callback carries. */
  stackStatusOf(frame: EzspIncoming): number {
    return this.readStatus(new ByteReader(frame.parameters));
  }

  /**
   * Wait for a stack status among `wanted` (or any of `failures`, which rejects) received from
   * callback index `since` on; other stack statuses (network opened/closed…) are skipped.
   */
  async waitForStackStatus(
    wanted: number,
    failures: readonly number[],
    timeoutMs: number,
    since: number,
  ): Promise<void> {
    const frame = await this.host.waitForCallback(
      (f) => {
        if (f.frameId !== FrameId.STACK_STATUS_HANDLER) return false;
        const s = this.stackStatusOf(f);
        return s === wanted || failures.includes(s);
      },
      timeoutMs,
      since,
      `stack status ${this.statusText(wanted)}`,
    );
    const status = this.stackStatusOf(frame);
    if (status !== wanted)
      throw new EzspError(
        `the stack reported ${this.statusText(status)} instead of ${this.statusText(wanted)}`,
      );
  }
}
