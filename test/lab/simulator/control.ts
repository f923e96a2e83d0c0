/**
 * The lab's handle on the dongle: a unix socket speaking JSON lines. Each request line
 * `{"cmd": ...}` gets exactly one reply line `{"ok": true, ...}` or `{"ok": false, "error": "..."}`.
 *
 *   status                        → identity, device state, frame counters, network, flags
 *   nvram                         → NV contents in zigpy-znp nvram_read's JSON shape (under "nvram")
 *   stats                         → MT traffic counters since start
 *   unplug / replug / power-cycle → pull the stick, put it back (power-on reset), both
 *   set-traffic {frames_per_second} → background NWK traffic rate while started and connected
 */
import { chmodSync, rmSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { removeStaleSocket } from "./host-port.js";
import type { Logger } from "./simulator.js";

export type ControlReply = { ok: true; [key: string]: unknown } | { ok: false; error: string };

export type ControlHandler = (request: Record<string, unknown>) => Promise<ControlReply>;

const MAX_LINE = 64 * 1024;

export class ControlServer {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();

  constructor(
    private readonly path: string,
    private readonly handle: ControlHandler,
    private readonly log: Logger,
  ) {}

  async start(): Promise<void> {
    removeStaleSocket(this.path);
    const server = createServer((socket) => this.serve(socket));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.path, () => {
        server.off("error", reject);
        resolve();
      });
    });
    chmodSync(this.path, 0o660);
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
    rmSync(this.path, { force: true });
  }

  private serve(socket: Socket): void {
    this.sockets.add(socket);
    socket.on("close", () => this.sockets.delete(socket));
    socket.on("error", () => {});
    let buffer = "";
    // Requests on one connection are answered in order, one at a time.
    let queue = Promise.resolve();
    socket.on("data", (chunk: Buffer) => {
      buffer += chunk.toString("utf8");
      if (buffer.length > MAX_LINE && !buffer.includes("\n")) {
        socket.end(`${JSON.stringify({ ok: false, error: "request line too long" })}\n`);
        return;
      }
      let nl = buffer.indexOf("\n");
      while (nl >= 0) {
        const line = buffer.slice(0, nl).trim();
        buffer = buffer.slice(nl + 1);
        nl = buffer.indexOf("\n");
        if (!line) continue;
        queue = queue.then(async () => {
          const reply = await this.answer(line);
          if (!socket.destroyed) socket.write(`${JSON.stringify(reply)}\n`);
        });
      }
    });
  }

  private async answer(line: string): Promise<ControlReply> {
    let request: unknown;
    try {
      request = JSON.parse(line);
    } catch {
      return { ok: false, error: "request is not valid JSON" };
    }
    if (typeof request !== "object" || request === null || Array.isArray(request)) {
      return { ok: false, error: 'request must be a JSON object like {"cmd":"status"}' };
    }
    try {
      return await this.handle(request as Record<string, unknown>);
    } catch (error) {
      this.log.info(`control request failed: ${(error as Error).message}`);
      return { ok: false, error: (error as Error).message };
    }
  }
}
