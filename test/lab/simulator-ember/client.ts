/**
 * Typed client for an ember simulator's control socket. The wire protocol is the Z-Stack
 * simulator's (one JSON line each way, ../simulator/control.ts), so the generic request plumbing is
 * reused; only the commands and replies differ.
 */
import { SimulatorClient } from "../simulator/client.js";
import type { LinkDescription, LinkSettings } from "../simulator/link.js";
import type { NcpState } from "./ncp.js";
import type { Tokens } from "./state-file.js";

export interface EmberStatus {
  ok: true;
  /** off (unplugged), no_network (nothing in the tokens), down (a network in the tokens, radio silent), up */
  state: NcpState;
  network_up: boolean;
  /** The EUI64 the running stack uses, MSB first. */
  eui64: string;
  factory_eui64: string;
  /** MFG_CUSTOM_EUI_64, MSB first; null while blank. */
  custom_eui64_token: string | null;
  eui64_after_reset: string;
  configured: boolean;
  pan_id: number | null;
  /** As herdsman writes it into coordinator_backup.json. */
  extended_pan_id: string | null;
  channel: number | null;
  nwk_update_id: number | null;
  nwk_frame_counter: number;
  max_nwk_frame_counter: number;
  host_connected: boolean;
  frames_per_second: number;
  ezsp_version: number;
  permit_joining: boolean;
  ash_failed: boolean;
  /** The last counter a host set with setValue(NWK_FRAME_COUNTER) (herdsman's restore), or null. */
  host_set_nwk_frame_counter: number | null;
  unplugged: boolean;
  link: LinkDescription;
}

export interface EmberStats {
  ok: true;
  frames_in: number;
  frames_out: number;
  callbacks_out: number;
  commands: Record<string, number>;
  unknown_frame_ids: string[];
  unknown_value_ids: number[];
  resets: number;
  ash: Record<string, number>;
  link: { sessions: number; deliveries: number; mean_lateness_ms: number; max_lateness_ms: number };
}

export class EmberSimulatorClient {
  private readonly inner: SimulatorClient;

  constructor(
    readonly socketPath: string,
    timeoutMs = 15_000,
  ) {
    this.inner = new SimulatorClient(socketPath, timeoutMs);
  }

  request<T>(body: Record<string, unknown>): Promise<T> {
    return this.inner.request<T>(body);
  }

  status(): Promise<EmberStatus> {
    return this.request({ cmd: "status" });
  }

  stats(): Promise<EmberStats> {
    return this.request({ cmd: "stats" });
  }

  async tokens(): Promise<{ factory_eui64: string; max_nwk_frame_counter: number; tokens: Tokens }> {
    return this.request({ cmd: "tokens" });
  }

  unplug(): Promise<EmberStatus> {
    return this.request({ cmd: "unplug" });
  }

  replug(): Promise<EmberStatus> {
    return this.request({ cmd: "replug" });
  }

  powerCycle(): Promise<EmberStatus> {
    return this.request({ cmd: "power_cycle" });
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

  resetMaxFrameCounter(): Promise<EmberStatus> {
    return this.request({ cmd: "reset_max_frame_counter" });
  }

  setTraffic(framesPerSecond: number): Promise<EmberStatus> {
    return this.request({ cmd: "set_traffic", frames_per_second: framesPerSecond });
  }

  setLink(settings: LinkSettings): Promise<EmberStatus> {
    return this.request({
      cmd: "set_link",
      mode: settings.mode,
      ...(settings.baud !== undefined ? { baud: settings.baud } : {}),
      ...(settings.latencyMs !== undefined ? { latency_ms: settings.latencyMs } : {}),
      ...(settings.nvWriteMs !== undefined ? { nv_write_ms: settings.nvWriteMs } : {}),
      ...(settings.nvDeleteMs !== undefined ? { nv_delete_ms: settings.nvDeleteMs } : {}),
    });
  }
}
