/**
 * The dongle's host connection offered as a TCP or unix stream socket, for both simulated chips.
 * Like a serial port it serves one client at a time: a second connection is closed at once.
 * Opening the port does nothing to the chip; the client finds the device in whatever state it is.
 */
import { chmodSync, rmSync, statSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { type LineFraming, type LinkProfile, type LinkStats, SerialLink } from "./link.js";
import type { HostLink, Logger } from "./simulator.js";

/**
 * How a new host session reaches the chip: undefined for instant (bytes pass at once), or a timed
 * serial line. Asked at every connection, so a change applies from the next session on.
 */
export interface LinkSource {
  profile(): LinkProfile | undefined;
  readonly stats: LinkStats;
  /** How the chip on the other end takes what the host writes. */
  readonly framing: LineFraming;
}

/** What a host port needs of the chip behind it. */
export interface HostDevice {
  /** false: refused (the port is in use or the dongle is unplugged). */
  attachHost(link: HostLink): boolean;
  receive(link: HostLink, chunk: Buffer): void;
  detachHost(link: HostLink): void;
}

export type HostPortSpec = { kind: "tcp"; host: string; port: number } | { kind: "unix"; path: string };

export function parseTcpSpec(value: string): HostPortSpec {
  const m = /^(\[[^\]]+\]|[^:]+):(\d{1,5})$/.exec(value);
  if (!m) throw new Error(`--listen-tcp expects HOST:PORT, got ${JSON.stringify(value)}`);
  const port = Number(m[2]);
  if (port > 65535) throw new Error(`--listen-tcp: port out of range in ${JSON.stringify(value)}`);
  return { kind: "tcp", host: m[1]!.replace(/^\[|\]$/g, ""), port };
}

export function describeSpec(spec: HostPortSpec): string {
  return spec.kind === "tcp" ? `tcp://${spec.host}:${spec.port}` : `unix:${spec.path}`;
}

/** Remove a leftover socket file, but never a regular file someone pointed us at by mistake. */
export function removeStaleSocket(path: string): void {
  let st: ReturnType<typeof statSync>;
  try {
    st = statSync(path);
  } catch {
    return;
  }
  if (!st.isSocket()) throw new Error(`${path} exists and is not a socket; refusing to replace it`);
  rmSync(path, { force: true });
}

export class HostPort {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  private counter = 0;
  /** Port actually bound (TCP), kept so a replugged dongle comes back on the same one. */
  private boundPort: number | undefined;

  constructor(
    private readonly device: HostDevice,
    readonly spec: HostPortSpec,
    private readonly log: Logger,
    private readonly unixMode = 0o660,
    private readonly link?: LinkSource,
  ) {}

  /** Where hosts connect, with the real port when 0 was asked for. */
  get address(): string {
    if (this.spec.kind === "unix") return `unix:${this.spec.path}`;
    return `tcp://${this.spec.host}:${this.boundPort ?? this.spec.port}`;
  }

  get listening(): boolean {
    return this.server?.listening ?? false;
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
    this.log.debug(`listening on ${this.address}`);
  }

  /** Stop accepting and drop the connected client (the port is gone). */
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
    let serial: SerialLink | undefined;
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
      serial = new SerialLink(
        profile,
        {
          toDevice: (bytes) => this.device.receive(link, bytes),
          toHost: (bytes) => {
            if (open) socket.write(bytes);
          },
        },
        undefined,
        this.link?.stats,
        this.link?.framing,
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
      // On a timed line the chip still gets what the host wrote before it closed the port.
      if (serial) serial.drain(() => this.device.detachHost(link));
      else this.device.detachHost(link);
    });
  }
}
