/**
 * Typed client for a simulator's control socket (see control.ts). Each call opens a short-lived
 * connection, so a client survives the simulator process being restarted between calls.
 */
import { connect } from "node:net";
import { type LinkDescription, type LinkSettings, type LinkStatsReport, linkRequestFields } from "./link.js";
import type { ZigpyNvramDump } from "./nv.js";

export interface SimulatorStatus {
  ok: true;
  /** The IEEE the dongle currently answers with (NV EXTADDR), MSB first. */
  ieee: string;
  /** The factory IEEE, restored when EXTADDR is deleted. */
  hardware_ieee: string;
  state: "hold" | "started";
  device_state: number;
  nwk_frame_counter: number;
  max_nwk_frame_counter: number;
  pan_id: number | null;
  /** NIB extended PAN ID, MSB first (the order zigbee2mqtt's coordinator_backup.json uses). */
  extended_pan_id: string | null;
  channel: number | null;
  configured: boolean;
  unplugged: boolean;
  host_connected: boolean;
  frames_per_second: number;
  /** The serial line's timing for new host sessions. */
  link: LinkDescription;
}

export interface SimulatorStats {
  ok: true;
  frames_in: number;
  frames_out: number;
  commands: Record<string, number>;
  unknown_commands: string[];
  discarded_bytes: number;
  /** Timed-line sessions so far and how far deliveries fell behind the computed schedule. */
  link: LinkStatsReport;
}

export class SimulatorError extends Error {}

/**
 * The commands both simulators answer, over a connection per call. `separator` joins the words of a
 * command as the simulator spells it.
 */
export class ControlClient<S> {
  constructor(
    readonly socketPath: string,
    private readonly separator: "-" | "_",
    private readonly timeoutMs = 15_000,
  ) {}

  protected command(words: string): string {
    return words.replaceAll(" ", this.separator);
  }

  status(): Promise<S> {
    return this.request<S>({ cmd: "status" });
  }

  unplug(): Promise<S> {
    return this.request<S>({ cmd: "unplug" });
  }

  replug(): Promise<S> {
    return this.request<S>({ cmd: "replug" });
  }

  powerCycle(): Promise<S> {
    return this.request<S>({ cmd: this.command("power cycle") });
  }

  /** `max_nwk_frame_counter` starts again from the running chip's counter (0 without a network). */
  resetMaxFrameCounter(): Promise<S> {
    return this.request<S>({ cmd: this.command("reset max frame counter") });
  }

  setTraffic(framesPerSecond: number): Promise<S> {
    return this.request<S>({ cmd: this.command("set traffic"), frames_per_second: framesPerSecond });
  }

  /** The serial line's timing from the next host session on (a session in progress keeps its own). */
  setLink(settings: LinkSettings): Promise<S> {
    return this.request<S>({ cmd: this.command("set link"), ...linkRequestFields(settings) });
  }

  /** Send any request object; resolves with the reply, rejects with SimulatorError on `ok: false`. */
  request<T>(body: Record<string, unknown>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const socket = connect(this.socketPath);
      let buffer = "";
      let settled = false;
      const finish = (error: Error | undefined, value?: T) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        socket.destroy();
        if (error) reject(error);
        else resolve(value as T);
      };
      const timer = setTimeout(
        () =>
          finish(new SimulatorError(`no reply to ${JSON.stringify(body.cmd)} within ${this.timeoutMs} ms`)),
        this.timeoutMs,
      );
      socket.on("connect", () => socket.write(`${JSON.stringify(body)}\n`));
      socket.on("data", (chunk: Buffer) => {
        buffer += chunk.toString("utf8");
        const nl = buffer.indexOf("\n");
        if (nl < 0) return;
        let reply: { ok: boolean; error?: string };
        try {
          reply = JSON.parse(buffer.slice(0, nl));
        } catch {
          finish(new SimulatorError("control reply is not JSON"));
          return;
        }
        if (!reply.ok) finish(new SimulatorError(reply.error ?? "request failed"));
        else finish(undefined, reply as T);
      });
      socket.on("error", (error) =>
        finish(new SimulatorError(`control socket ${this.socketPath}: ${error.message}`)),
      );
      socket.on("close", () => finish(new SimulatorError("control socket closed before replying")));
    });
  }
}

export class SimulatorClient extends ControlClient<SimulatorStatus> {
  constructor(socketPath: string, timeoutMs = 15_000) {
    super(socketPath, "-", timeoutMs);
  }

  async nvram(): Promise<ZigpyNvramDump> {
    return (await this.request<{ ok: true; nvram: ZigpyNvramDump }>({ cmd: "nvram" })).nvram;
  }

  stats(): Promise<SimulatorStats> {
    return this.request<SimulatorStats>({ cmd: "stats" });
  }
}
