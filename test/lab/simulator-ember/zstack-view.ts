/**
 * An ember dongle seen through the Z-Stack simulator's client, so that the lab's generic checks
 * (one coordinator on the air, counters never lower, a dongle at rest) read both families alike.
 * The control socket speaks the same protocol and the shared commands (unplug, replug,
 * power-cycle, reset-max-frame-counter, set-link) have the same names; status and stats are
 * translated. An ember dongle has no NVRAM dump.
 */
import { SimulatorClient, type SimulatorStats, type SimulatorStatus } from "../simulator/client.js";
import type { ZigpyNvramDump } from "../simulator/nv.js";
import type { EmberStats, EmberStatus } from "./client.js";

export class EmberDongleView extends SimulatorClient {
  override async status(): Promise<SimulatorStatus> {
    return zstackShaped(await this.request<EmberStatus>({ cmd: "status" }));
  }

  override async stats(): Promise<SimulatorStats> {
    const s = await this.request<EmberStats>({ cmd: "stats" });
    return {
      ok: true,
      frames_in: s.frames_in,
      frames_out: s.frames_out,
      commands: s.commands,
      unknown_commands: s.unknown_frame_ids,
      discarded_bytes: 0,
      link: s.link,
    };
  }

  override async nvram(): Promise<ZigpyNvramDump> {
    throw new Error("an ember dongle has tokens, not a Z-Stack NVRAM dump");
  }
}

/** "Started" is a network on the air: an NCP keeps it up with no host until it is reset. */
export function zstackShaped(s: EmberStatus): SimulatorStatus {
  return {
    ok: true,
    ieee: s.eui64,
    hardware_ieee: s.factory_eui64,
    state: s.network_up ? "started" : "hold",
    device_state: s.network_up ? 9 : 0,
    nwk_frame_counter: s.nwk_frame_counter,
    max_nwk_frame_counter: s.max_nwk_frame_counter,
    pan_id: s.pan_id,
    extended_pan_id: s.extended_pan_id,
    channel: s.channel,
    configured: s.configured,
    unplugged: s.unplugged,
    host_connected: s.host_connected,
    frames_per_second: s.frames_per_second,
    link: s.link,
  };
}
