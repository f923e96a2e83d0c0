/**
 * One simulated EmberZNet dongle as a running service (the Z-Stack simulator's DongleService): the
 * NCP, its flash (state file), the ways a host reaches it (TCP, unix socket, pty) and the lab's
 * control socket.
 */
import { randomBytes } from "node:crypto";
import { SlStatus } from "../../../sidecar/coordinator/ember/constants.js";
import {
  type ControlCommand,
  type DongleKind,
  DongleService,
  type DongleServiceOptions,
} from "../simulator/service.js";
import { writeFileAtomic } from "../simulator/state-file.js";
import { DEFAULT_EZSP_VERSION } from "./constants.js";
import { ASH_FRAMING } from "./link.js";
import { EmberNcp } from "./ncp.js";
import { blankTokens, loadState, serializeState, type Tokens } from "./state-file.js";

export interface ServiceOptions extends DongleServiceOptions {
  /** Factory EUI64 for a new state file (MSB first); random with a Silicon Labs OUI if absent. */
  eui64?: string;
  /** New state file only: MFG_CUSTOM_EUI_64 already programmed (a dongle someone restored onto before). */
  customEui64?: string;
  ezspVersion?: number;
  trace?: (line: string) => void;
}

const EMBER: DongleKind = { framing: ASH_FRAMING, ptyTempPrefix: "ember-sim-pty-", commandSeparator: "_" };

export function normalizeEui64(value: string): string {
  const hex = value.toLowerCase().replace(/^0x/, "").replace(/[:-]/g, "");
  if (!/^[0-9a-f]{16}$/.test(hex))
    throw new Error(`EUI64 must be 16 hex digits, got ${JSON.stringify(value)}`);
  if (hex === "ffffffffffffffff")
    throw new Error("EUI64 ffffffffffffffff is the blank token, not an address");
  return hex;
}

export class EmberSimulatorService extends DongleService<EmberNcp> {
  constructor(options: ServiceOptions) {
    const log = options.log;
    const existing = loadState(options.statePath);
    let tokens: Tokens;
    let factoryEui64: string;
    let maxFc: number;
    if (existing) {
      ({ tokens, factoryEui64, maxNwkFrameCounter: maxFc } = existing);
      if (options.eui64 && normalizeEui64(options.eui64) !== factoryEui64)
        log.info(`--eui64 ${options.eui64} ignored: ${options.statePath} belongs to ${factoryEui64}`);
      if (options.customEui64) log.info(`--custom-eui64 ignored: ${options.statePath} already exists`);
    } else {
      tokens = blankTokens();
      if (options.customEui64) tokens.customEui64 = normalizeEui64(options.customEui64);
      // 0x8c65a3 is one of Silicon Labs' OUIs; the rest is random like a factory-programmed part.
      factoryEui64 = options.eui64
        ? normalizeEui64(options.eui64)
        : `8c65a3ff${randomBytes(4).toString("hex")}`;
      maxFc = 0;
      log.info(
        `new dongle ${factoryEui64}${tokens.customEui64 ? ` (custom EUI64 token ${tokens.customEui64})` : ""}, state in ${options.statePath}`,
      );
    }
    super(
      options,
      EMBER,
      (persistSoon) =>
        new EmberNcp({
          tokens,
          factoryEui64,
          maxNwkFrameCounter: maxFc,
          framesPerSecond: options.framesPerSecond,
          resetDelayMs: options.resetDelayMs,
          stepDelayMs: options.stepDelayMs,
          ezspVersion: options.ezspVersion ?? DEFAULT_EZSP_VERSION,
          log,
          trace: options.trace,
          onStateChange: persistSoon,
        }),
    );
  }

  protected override persist(): void {
    writeFileAtomic(
      this.options.statePath,
      serializeState({
        factoryEui64: this.device.factoryEui64,
        maxNwkFrameCounter: this.device.maxNwkFrameCounter,
        tokens: this.device.tokens,
      }),
    );
  }

  protected override ownCommands(): [string, ControlCommand][] {
    return [
      [
        "tokens",
        () => ({
          ok: true,
          factory_eui64: this.device.factoryEui64,
          max_nwk_frame_counter: this.device.maxNwkFrameCounter,
          tokens: this.device.tokens,
        }),
      ],
      [
        "reset",
        () => {
          if (this.unplugged) return { ok: false, error: "the dongle is unplugged" };
          this.device.reboot("control socket");
          return this.statusReply();
        },
      ],
      [
        "leave",
        () => {
          if (this.unplugged) return { ok: false, error: "the dongle is unplugged" };
          this.device.leave();
          this.writer.flush();
          return this.statusReply();
        },
      ],
      [
        "write_custom_eui64",
        (request) => {
          if (typeof request.eui64 !== "string")
            return { ok: false, error: "write_custom_eui64 needs eui64" };
          const result = this.device.writeCustomEui64(normalizeEui64(request.eui64));
          if (result === SlStatus.FLASH_WRITE_INHIBITED)
            return {
              ok: false,
              error: `the custom EUI64 token is already written (${this.device.tokens.customEui64})`,
            };
          this.writer.flush();
          return this.statusReply();
        },
      ],
    ];
  }
}
