/**
 * What the node tool does with an EmberZNet NCP while zigbee2mqtt is stopped: read what it holds,
 * park it, wipe its network, write the one-time custom EUI64 token. Each operation starts with an
 * ASH RST (so whatever a previous host left running stops) and leaves the NCP off the air: either
 * freshly reset (a network in its tokens stays there, silent until a host calls networkInit) or
 * holding no network at all.
 *
 * The sequences are the ones herdsman's ember adapter and Nerivec's ember-zli (both MIT, both used
 * against real dongles) send for the same purposes: docs/ember-tool.md has the details.
 */
import { EzspCommands } from "./commands.js";
import { nodeTypeName, SlStatus } from "./constants.js";
import { AshError, EzspError, type EzspHost, EzspTimeoutError } from "./host.js";

/** The time an operation may take, shared by its steps. */
export class Deadline {
  private readonly end: number;

  constructor(
    readonly totalMs: number,
    /** Extra time a failed operation may spend resetting the NCP so that it is not left on the air. */
    readonly cleanupMs = 6000,
  ) {
    this.end = Date.now() + totalMs;
  }

  remaining(): number {
    return this.end - Date.now();
  }

  /** A step's wait: its own default, cut to what is left; none left is a timeout. */
  budget(stepMs: number, what: string): number {
    const left = this.remaining();
    if (left <= 0) throw new EzspTimeoutError(`the ${this.totalMs} ms time limit ran out before ${what}`);
    return Math.min(stepMs, left);
  }
}

/**
 * RSTACK wait per RST: a real reset takes about 1–1.5 s (docs/simulator-ember.md; herdsman allows
 * 5 s once). Three shorter tries recover from an RST lost in line noise without waiting 5 s.
 */
const RESET_WAIT_MS = 3000;
const RESET_ATTEMPTS = 3;
const COMMAND_WAIT_MS = 5000;
/** ember-zli's waitForStackStatus default. */
const STACK_STATUS_WAIT_MS = 10_000;

export interface NetworkInfo {
  pan_id: number;
  /** "0x" + the 8 bytes as coordinator_backup.json's extended_pan_id writes them. */
  extended_pan_id: string;
  channel: number;
  nwk_frame_counter: number;
  node_type: string;
}

export interface InfoResult {
  /** The EUI64 the NCP uses ("0x", most significant byte first, as bridge/info shows it). */
  eui64: string;
  /** MFG_CUSTOM_EUI_64, same form, or null while the token is blank. */
  custom_eui64: string | null;
  ezsp_version: number;
  /** EmberZNet `major.minor.patch.special` (GET_VALUE VERSION_INFO). */
  stack_version: string;
  /** Absent when not read (`info --no-network`). */
  network?: NetworkInfo | null;
}

export const hexEui64 = (msbFirst: string) => `0x${msbFirst}`;

/** RST and wait for RSTACK, a few times: the first RST may land while the chip is still booting. */
export async function resetNcp(host: EzspHost, deadline: Deadline, what = "the reset"): Promise<void> {
  const started = Date.now();
  let attempts = 0;
  for (;;) {
    let wait: number;
    try {
      wait = deadline.budget(RESET_WAIT_MS, what);
    } catch (error) {
      if (attempts === 0) throw error;
      break;
    }
    attempts++;
    try {
      await host.reset(wait);
      return;
    } catch (error) {
      if (!(error instanceof EzspTimeoutError)) throw error;
    }
    if (attempts === RESET_ATTEMPTS) break;
  }
  throw new AshError(
    `the NCP does not answer an ASH reset (no RSTACK within ${Date.now() - started} ms after ${attempts} RST${attempts > 1 ? "s" : ""}): is this an EmberZNet NCP (not its bootloader, not a Z-Stack or RCP firmware) at this baud rate and flow control?`,
  );
}

async function connect(host: EzspHost, deadline: Deadline): Promise<EzspCommands> {
  await resetNcp(host, deadline);
  await host.negotiateVersion(deadline.budget(COMMAND_WAIT_MS, "VERSION"));
  return new EzspCommands(host, () => deadline.budget(COMMAND_WAIT_MS, "an EZSP response"));
}

/**
 * Run `work`; if it fails once the NCP may be running a network, reset the NCP (from its own
 * cleanup budget) so that it does not stay on the air, and say in the error whether that worked.
 */
async function parkingOnError<T>(host: EzspHost, deadline: Deadline, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    const message = (error as Error).message;
    try {
      await resetNcp(host, new Deadline(deadline.cleanupMs, 0), "the reset after a failure");
    } catch (cleanup) {
      throw new Error(
        `${message}; resetting the NCP afterwards failed too (${(cleanup as Error).message}): its network may still be on the air, run park`,
      );
    }
    throw new Error(`${message} (the NCP was reset afterwards: no network on the air)`);
  }
}

/**
 * NETWORK_INIT and, when the tokens hold a network, wait until it is up. Returns false for
 * NOT_JOINED (nothing in the tokens).
 */
async function startNetwork(commands: EzspCommands, deadline: Deadline): Promise<boolean> {
  const since = commands.host.callbacks.length;
  const status = await commands.networkInit();
  if (status === SlStatus.NOT_JOINED) return false;
  if (status !== SlStatus.OK) throw new EzspError(`NETWORK_INIT failed: ${commands.statusText(status)}`);
  await commands.waitForStackStatus(
    SlStatus.NETWORK_UP,
    [SlStatus.NETWORK_DOWN, SlStatus.NOT_JOINED],
    deadline.budget(STACK_STATUS_WAIT_MS, "NETWORK_UP"),
    since,
  );
  return true;
}

/**
 * RST, version, the NCP's EUI64 and custom EUI64 token; then, if a network is in the tokens,
 * networkInit and read it (node type, PAN, extended PAN, channel, the network key's outgoing frame
 * counter, as herdsman's backup reads them); then RST again so the NCP is parked.
 */
export async function ncpInfo(
  host: EzspHost,
  deadline: Deadline,
  options: { network?: boolean } = {},
): Promise<InfoResult> {
  const commands = await connect(host, deadline);
  const ezspVersion = host.ezspVersion;
  const stack = await commands.stackVersion();
  const eui64 = await commands.eui64();
  const custom = await commands.customEui64Token();
  // Reading the network needs NETWORK_INIT, which puts it on the air for a moment: never while
  // another coordinator runs the same network, so a caller that only needs the EUI64 skips it.
  if (options.network === false)
    return {
      eui64: hexEui64(eui64),
      custom_eui64: custom === null ? null : hexEui64(custom),
      ezsp_version: ezspVersion,
      stack_version: stack.version,
    };
  const network = await parkingOnError(host, deadline, async (): Promise<NetworkInfo | null> => {
    if (!(await startNetwork(commands, deadline))) return null;
    const params = await commands.networkParameters();
    if (params.status !== SlStatus.OK)
      throw new EzspError(`GET_NETWORK_PARAMETERS failed: ${commands.statusText(params.status)}`);
    const key = await commands.networkKeyInfo();
    if (key.status !== SlStatus.OK)
      throw new EzspError(`GET_NETWORK_KEY_INFO failed: ${commands.statusText(key.status)}`);
    if (!key.networkKeySet)
      throw new EzspError("the network is up but GET_NETWORK_KEY_INFO says no key is set");
    return {
      pan_id: params.panId,
      extended_pan_id: `0x${params.extendedPanId}`,
      channel: params.channel,
      nwk_frame_counter: key.frameCounter,
      node_type: nodeTypeName(params.nodeType),
    };
  });
  try {
    await resetNcp(host, deadline, "the final reset");
  } catch (error) {
    if (network === null) throw error;
    throw new Error(
      `${(error as Error).message}; the network was started to read it and may still be on the air: run park`,
    );
  }
  return {
    eui64: hexEui64(eui64),
    custom_eui64: custom === null ? null : hexEui64(custom),
    ezsp_version: ezspVersion,
    stack_version: stack.version,
    network,
  };
}

/** RST and wait for RSTACK: the network stops until a host calls networkInit; tokens untouched. */
export async function parkNcp(host: EzspHost, deadline: Deadline): Promise<{ parked: true }> {
  await resetNcp(host, deadline);
  return { parked: true };
}

/**
 * The network erased from the NCP's tokens without it ever coming up: RST, version,
 * TOKEN_FACTORY_RESET (the outgoing frame counter and the manufacturing tokens, the custom EUI64
 * among them, stay), RST, then NETWORK_INIT must answer NOT_JOINED. Starting the
 * network to leave it (what herdsman does) would put an old copy on the air beside the running
 * coordinator, and its leave could be heard. Firmware without the command (it answers
 * INVALID_COMMAND) is wiped that way anyway, as the only one it offers.
 */
export async function wipeNcp(
  host: EzspHost,
  deadline: Deadline,
): Promise<{ wiped: true; method: "token-factory-reset" | "leave-network"; had_network?: boolean }> {
  const commands = await connect(host, deadline);
  try {
    // The outgoing frame counter is kept: a counter never goes lower, whatever comes next.
    await commands.tokenFactoryReset(true, true);
  } catch (error) {
    if (!(error instanceof EzspError) || !/refused/.test(error.message)) throw error;
    return { ...(await leaveNetworkWipe(host, commands, deadline)), method: "leave-network" };
  }
  const again = await connect(host, deadline);
  const stillThere = await parkingOnError(host, deadline, () => startNetwork(again, deadline));
  if (stillThere) {
    await resetNcp(host, deadline, "the reset after a failed wipe");
    throw new EzspError(
      "TOKEN_FACTORY_RESET was answered, but networkInit still finds a network in the tokens",
    );
  }
  return { wiped: true, method: "token-factory-reset" };
}

/**
 * networkInit; with a network: leaveNetwork and wait for NETWORK_DOWN (what herdsman does with a
 * dongle holding another network), then RST and networkInit again to check that the tokens hold
 * no network any more (NOT_JOINED: nothing can come up).
 */
async function leaveNetworkWipe(
  host: EzspHost,
  commands: EzspCommands,
  deadline: Deadline,
): Promise<{ wiped: true; had_network: boolean }> {
  const hadNetwork = await parkingOnError(host, deadline, async () => {
    if (!(await startNetwork(commands, deadline))) return false;
    const since = host.callbacks.length;
    const status = await commands.leaveNetwork();
    if (status !== SlStatus.OK) throw new EzspError(`LEAVE_NETWORK failed: ${commands.statusText(status)}`);
    await commands.waitForStackStatus(
      SlStatus.NETWORK_DOWN,
      [],
      deadline.budget(STACK_STATUS_WAIT_MS, "NETWORK_DOWN"),
      since,
    );
    return true;
  });
  if (hadNetwork) {
    const again = await connect(host, deadline);
    const stillThere = await parkingOnError(host, deadline, () => startNetwork(again, deadline));
    if (stillThere) {
      await resetNcp(host, deadline, "the reset after a failed wipe");
      throw new EzspError("the NCP left its network but networkInit still finds one in its tokens");
    }
  }
  return { wiped: true, had_network: hadNetwork };
}

/** 16 hex digits, optionally 0x-prefixed, most significant byte first; returns them lowercase. */
export function parseEui64(text: string): string | undefined {
  const m = /^(?:0x)?([0-9a-fA-F]{16})$/.exec(text);
  if (!m) return undefined;
  const eui64 = m[1]!.toLowerCase();
  // All ones is the blank token; all zeros is no EUI64 either.
  if (eui64 === "ffffffffffffffff" || eui64 === "0000000000000000") return undefined;
  return eui64;
}

/**
 * Make the dongle carry `eui64` (MSB first hex) by writing the one-time MFG_CUSTOM_EUI_64 token:
 * written when blank, nothing to do when it holds that value (or when the token is blank and the
 * factory EUI64 already is that value: burning the token would gain nothing), refused when it holds
 * another value. After a write the NCP is reset and must report the new EUI64.
 */
export async function setCustomEui64(
  host: EzspHost,
  eui64: string,
  deadline: Deadline,
): Promise<{ eui64: string; written: boolean }> {
  const commands = await connect(host, deadline);
  const token = await commands.customEui64Token();
  if (token === eui64) return { eui64: hexEui64(eui64), written: false };
  if (token !== null)
    throw new EzspError(
      `the dongle's custom EUI64 token is already written with ${hexEui64(token)} and can be written only once: this dongle cannot carry the network's EUI64 ${hexEui64(eui64)}`,
    );
  if ((await commands.eui64()) === eui64) return { eui64: hexEui64(eui64), written: false };
  const status = await commands.setCustomEui64Token(eui64);
  if (status !== SlStatus.OK)
    throw new EzspError(`SET_MFG_TOKEN(CUSTOM_EUI_64) failed: ${commands.statusText(status)}`);
  const readBack = await commands.customEui64Token();
  if (readBack !== eui64)
    throw new EzspError(
      `SET_MFG_TOKEN(CUSTOM_EUI_64) reported success but the token reads ${readBack === null ? "blank" : hexEui64(readBack)}`,
    );
  // The stack reads the token at boot: reboot and check that it now uses it.
  const after = await connect(host, deadline);
  const running = await after.eui64();
  if (running !== eui64)
    throw new EzspError(
      `the custom EUI64 token now holds ${hexEui64(eui64)} but after a reset the NCP still uses ${hexEui64(running)}`,
    );
  return { eui64: hexEui64(eui64), written: true };
}
