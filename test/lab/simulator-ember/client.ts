/**
 * Typed client for an ember simulator's control socket. The wire protocol is the Z-Stack
 * simulator's (one JSON line each way, ../simulator/control.ts), and so are the commands both
 * share; only the spelling, the replies and the ember commands differ.
 */
import { ControlClient } from "../simulator/client.js";
import type { LinkDescription, LinkStatsReport } from "../simulator/link.js";
import type { NcpStats, NcpStatus } from "./ncp.js";
import type { Tokens } from "./state-file.js";

export interface EmberStatus extends NcpStatus {
  ok: true;
  unplugged: boolean;
  link: LinkDescription;
}

export interface EmberStats extends NcpStats {
  ok: true;
  link: LinkStatsReport;
}

export class EmberSimulatorClient extends ControlClient<EmberStatus> {
  constructor(socketPath: string, timeoutMs = 15_000) {
    super(socketPath, "_", timeoutMs);
  }

  stats(): Promise<EmberStats> {
    return this.request({ cmd: "stats" });
  }

  async tokens(): Promise<{ factory_eui64: string; max_nwk_frame_counter: number; tokens: Tokens }> {
    return this.request({ cmd: "tokens" });
  }

  /** The chip reboots as after an ASH RST: the network stops until a host calls networkInit. */
  reset(): Promise<EmberStatus> {
    return this.request({ cmd: "reset" });
  }

  /** The network tokens are erased (what leaveNetwork does): the dongle is blank but keeps its EUI64 token. */
  leave(): Promise<EmberStatus> {
    return this.request({ cmd: "leave" });
  }

  /** Program MFG_CUSTOM_EUI_64 (once; rejects if already written). Used from the next boot. */
  writeCustomEui64(eui64: string): Promise<EmberStatus> {
    return this.request({ cmd: "write_custom_eui64", eui64 });
  }
}
