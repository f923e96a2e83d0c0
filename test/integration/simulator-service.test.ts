/**
 * The simulator process itself: its control socket, its flash (state file) across restarts and a
 * hard kill, and the one-host-at-a-time rule, driven over real sockets on loopback.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, realpathSync, rmSync, statSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SimulatorError } from "../lab/simulator/client.js";
import { encodeFrame, FrameParser, type MtFrame, MtType, Subsystem } from "../lab/simulator/frame.js";
import { SimulatorProcess } from "../lab/simulator/process.js";

let dir: string;
const sims: SimulatorProcess[] = [];

async function start(name: string, extra: Partial<Parameters<typeof SimulatorProcess.start>[0]> = {}) {
  const sim = await SimulatorProcess.start({ dir, name, ieee: "00124b0000005e01", ...extra });
  sims.push(sim);
  return sim;
}

/** A minimal MT host over TCP: send SREQs, collect replies. */
async function mtHost(url: string) {
  const { hostname, port } = new URL(url.replace(/^socket:/, "tcp:"));
  const socket = connect(Number(port), hostname);
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("error", reject);
  });
  const parser = new FrameParser();
  const frames: MtFrame[] = [];
  let closed = false;
  socket.on("data", (chunk: Buffer) => frames.push(...parser.push(chunk)));
  socket.on("close", () => {
    closed = true;
  });
  socket.on("error", () => {});
  return {
    frames,
    get closed() {
      return closed;
    },
    async sreq(subsystem: number, command: number, data = Buffer.alloc(0)): Promise<Buffer> {
      const before = frames.length;
      socket.write(encodeFrame({ type: MtType.SREQ, subsystem, command, data }));
      const deadline = Date.now() + 5000;
      while (Date.now() < deadline) {
        const reply = frames.slice(before).find((f) => f.type === MtType.SRSP);
        if (reply) return reply.data;
        await new Promise((r) => setTimeout(r, 5));
      }
      throw new Error("no SRSP");
    },
    close: () => socket.destroy(),
  };
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "sim-service-"));
});

afterAll(async () => {
  for (const sim of sims) await sim.stop();
  if (process.env.KEEP_TEST_DIRS) console.info(`kept ${dir}`);
  else rmSync(dir, { recursive: true, force: true });
});

describe("the simulator process", () => {
  it("reports its status over the control socket and rejects bad requests with a reason", async () => {
    const sim = await start("control");
    expect(await sim.status()).toEqual({
      ok: true,
      ieee: "00124b0000005e01",
      hardware_ieee: "00124b0000005e01",
      state: "hold",
      device_state: 0,
      nwk_frame_counter: 0,
      max_nwk_frame_counter: 0,
      pan_id: null,
      extended_pan_id: null,
      channel: null,
      configured: false,
      unplugged: false,
      host_connected: false,
      frames_per_second: 5,
      link: { mode: "instant" },
    });
    await expect(sim.client.request({ cmd: "explode" })).rejects.toThrow(/unknown cmd "explode"/);
    expect((await sim.client.setLink({ mode: "realistic", latencyMs: 3 })).link).toEqual({
      mode: "realistic",
      baud: 115200,
      bits_per_byte: 10,
      latency_ms: 3,
      nv_write_ms: 4,
      nv_delete_ms: 15,
    });
    await expect(sim.client.setLink({ mode: "instant", latencyMs: 3 })).rejects.toThrow(
      /realistic link only/,
    );
    await expect(sim.client.request({ cmd: "set-link", mode: "fast" })).rejects.toThrow(/instant.*realistic/);
    await expect(sim.client.request({ cmd: "set-link", mode: "realistic", speed: 1 })).rejects.toThrow(
      /unknown field/,
    );
    expect((await sim.client.setLink({ mode: "instant" })).link).toEqual({ mode: "instant" });
    await expect(sim.client.setTraffic(-1)).rejects.toThrow(SimulatorError);
    expect((await sim.client.setTraffic(12.5)).frames_per_second).toBe(12.5);
    const raw = await new Promise<string>((resolve) => {
      const s = connect(sim.client.socketPath);
      let text = "";
      s.on("data", (c) => {
        text += c.toString();
        if (text.includes("\n")) {
          s.destroy();
          resolve(text);
        }
      });
      s.write("not json\n");
    });
    expect(JSON.parse(raw)).toEqual({ ok: false, error: "request is not valid JSON" });
  });

  it("serves one host at a time and keeps the chip as it is when a host reconnects", async () => {
    const sim = await start("single-host");
    const first = await mtHost(sim.socketUrl);
    expect((await first.sreq(Subsystem.SYS, 0x01)).readUInt16LE(0) & 0x0400).toBe(0x0400);
    // written by the first host, seen by the next: opening the port does not reset the chip
    expect(await first.sreq(Subsystem.SYS, 0x1d, Buffer.from("830000000200ab12", "hex"))).toEqual(
      Buffer.from([0]),
    );
    const second = await mtHost(sim.socketUrl);
    await new Promise((r) => setTimeout(r, 100));
    expect(second.closed).toBe(true);
    expect((await sim.status()).host_connected).toBe(true);
    first.close();
    await new Promise((r) => setTimeout(r, 100));
    const third = await mtHost(sim.socketUrl);
    expect(await third.sreq(Subsystem.SYS, 0x1c, Buffer.from("83000000", "hex"))).toEqual(
      Buffer.from("0002ab12", "hex"),
    );
    expect(third.frames.filter((f) => f.type === MtType.AREQ)).toEqual([]);
    third.close();
  });

  it("keeps NV and the highest frame counter in its state file across a restart and a hard kill", async () => {
    const sim = await start("flash", { framesPerSecond: 50 });
    const host = await mtHost(sim.socketUrl);
    // form a network on channel 20 via ZDO.startupFromApp (the Z-Stack 1.2 way), then let traffic run
    await host.sreq(Subsystem.SYS, 0x1d, Buffer.from("840000000400 00001000".replace(/ /g, ""), "hex"));
    expect(await host.sreq(Subsystem.ZDO, 0x40, Buffer.from("6400", "hex"))).toEqual(Buffer.from([1]));
    await new Promise((r) => setTimeout(r, 1500));
    const running = await sim.status();
    expect(running).toMatchObject({ state: "started", channel: 20 });
    expect(running.nwk_frame_counter).toBeGreaterThan(0);
    host.close();
    await new Promise((r) => setTimeout(r, 100));
    const stopped = await sim.status();

    await sim.kill(); // power lost without warning: what reached the file is what survives
    const state = JSON.parse(readFileSync(sim.statePath, "utf8"));
    expect(state.max_nwk_frame_counter).toBe(stopped.max_nwk_frame_counter);

    const again = await start("flash", { statePath: sim.statePath, ieee: "00124b00ffffffff" });
    expect(await again.status()).toMatchObject({
      hardware_ieee: "00124b0000005e01", // the file decides; --ieee only names a new dongle
      state: "hold",
      channel: 20,
      nwk_frame_counter: stopped.nwk_frame_counter,
      max_nwk_frame_counter: stopped.max_nwk_frame_counter,
    });
  });

  it("restarts its highest-counter watermark from the running counter on request, and keeps counting up from there", async () => {
    const sim = await start("watermark", { framesPerSecond: 50 });
    const host = await mtHost(sim.socketUrl);
    await host.sreq(Subsystem.SYS, 0x1d, Buffer.from("840000000400 00001000".replace(/ /g, ""), "hex"));
    expect(await host.sreq(Subsystem.ZDO, 0x40, Buffer.from("6400", "hex"))).toEqual(Buffer.from([1]));
    // The network starts a moment after the request and counts from then on: wait for the first frames
    // (a fixed pause was too short on a loaded machine).
    for (let i = 0; i < 100 && (await sim.status()).nwk_frame_counter === 0; i++) {
      await new Promise((r) => setTimeout(r, 100));
    }
    const reset = await sim.client.resetMaxFrameCounter();
    expect(reset.max_nwk_frame_counter).toBeGreaterThan(0);
    expect(reset.max_nwk_frame_counter).toBeLessThanOrEqual(reset.nwk_frame_counter);
    await new Promise((r) => setTimeout(r, 600));
    const later = await sim.status();
    expect(later.max_nwk_frame_counter).toBeGreaterThan(reset.max_nwk_frame_counter);
    host.close();
    // Without a running network the watermark starts from 0.
    await sim.client.powerCycle();
    expect((await sim.client.resetMaxFrameCounter()).max_nwk_frame_counter).toBe(0);
  });

  it("presents a serial device owned by the given group and removes it on SIGTERM", async () => {
    const gid = Number(execFileSync("getent", ["group", "dialout"], { encoding: "utf8" }).split(":")[2]);
    const sim = await start("tty", { pty: true, ptyGroup: "dialout", tcp: false });
    const target = realpathSync(sim.ptyPath!);
    expect(target).toMatch(/^\/dev\/pts\/\d+$/);
    const st = statSync(target);
    expect(st.isCharacterDevice()).toBe(true);
    expect(st.gid).toBe(gid);
    expect(st.mode & 0o777).toBe(0o660);
    expect(await sim.stop()).toEqual({ code: 0, signal: null });
    expect(existsSync(sim.ptyPath!)).toBe(false);
    expect(existsSync(sim.client.socketPath)).toBe(false);
  });

  it("refuses to start on a state file that is not its own, saying why", async () => {
    const bogus = join(dir, "bogus.json");
    await import("node:fs").then((fs) => fs.writeFileSync(bogus, '{"hello": 1}'));
    await expect(start("bogus", { statePath: bogus })).rejects.toThrow(/exited/);
    expect(readFileSync(join(dir, "bogus.log.stderr"), "utf8")).toMatch(
      /not a zigbee2mqtt-ha\/znp-simulator-state/,
    );
    expect(readFileSync(bogus, "utf8")).toBe('{"hello": 1}');
  });
});
