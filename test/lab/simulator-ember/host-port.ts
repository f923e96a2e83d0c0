/**
 * The dongle's host connection offered as a TCP or unix stream socket (the shape of the Z-Stack
 * simulator's host-port.ts, with the ASH line model). Like a serial port it serves one client at a
 * time: a second connection is closed at once. Opening the port does nothing to the chip (herdsman
 * resets it itself, with an ASH RST).
 */
import { chmodSync, rmSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { describeSpec, type HostPortSpec, removeStaleSocket } from "../simulator/host-port.js";
import type { LinkProfile, LinkStats } from "../simulator/link.js";
import { AshSerialLink } from "./link.js";
import type { EmberNcp, HostLink, Logger } from "./ncp.js";

/** The serial line's timing for a new session (undefined: instant), asked at every connection. */
export interface LinkSource {
  profile(): LinkProfile | undefined;
  readonly stats: LinkStats;
}

export class HostPort {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  private counter = 0;
  private boundPort: number | undefined;

  constructor(
    private readonly device: EmberNcp,
    readonly spec: HostPortSpec,
    private readonly log: Logger,
    private readonly unixMode = 0o660,
    private readonly link?: LinkSource,
  ) {}

  get address(): string {
    if (this.spec.kind === "unix") return `unix:${this.spec.path}`;
    return `tcp://${this.spec.host}:${this.boundPort ?? this.spec.port}`;
  }

  async start(): Promise<void> {
    if (this.server) return;
    const server = createServer((socket) => this.accept(socket));
    this.server = server;
    if (this.spec.kind === "unix") removeStaleSocket(this.spec.path);
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      const ready = () => {
        server.off("error", reject);
        resolve();
      };
      if (this.spec.kind === "tcp") server.listen(this.boundPort ?? this.spec.port, this.spec.host, ready);
      else server.listen(this.spec.path, ready);
    });
    if (this.spec.kind === "unix") chmodSync(this.spec.path, this.unixMode);
    const address = server.address();
    if (this.spec.kind === "tcp" && address && typeof address === "object") this.boundPort = address.port;
    server.on("error", (error) => this.log.info(`${describeSpec(this.spec)}: ${error.message}`));
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    if (!server) return;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    if (this.spec.kind === "unix") rmSync(this.spec.path, { force: true });
  }

  private accept(socket: Socket): void {
    socket.setNoDelay(true);
    const label = `${describeSpec(this.spec)}#${++this.counter}`;
    let open = true;
    let serial: AshSerialLink | undefined;
    const link: HostLink = {
      label,
      write: (data) => {
        if (!open) return;
        if (serial) serial.fromDevice(data);
        else socket.write(data);
      },
      close: () => {
        open = false;
        serial?.abort();
        socket.destroy();
      },
    };
    if (!this.device.attachHost(link)) {
      this.log.info(`${label}: refused (the port is in use or the dongle is unplugged)`);
      socket.destroy();
      return;
    }
    const profile = this.link?.profile();
    if (profile) {
      serial = new AshSerialLink(
        profile,
        {
          toDevice: (bytes) => this.device.receive(link, bytes),
          toHost: (bytes) => {
            if (open) socket.write(bytes);
          },
        },
        undefined,
        this.link?.stats,
      );
    }
    this.sockets.add(socket);
    socket.on("data", (chunk: Buffer) => {
      if (serial) serial.fromHost(chunk);
      else this.device.receive(link, chunk);
    });
    socket.on("error", () => {});
    socket.on("close", () => {
      open = false;
      this.sockets.delete(socket);
      if (serial) serial.drain(() => this.device.detachHost(link));
      else this.device.detachHost(link);
    });
  }
}
