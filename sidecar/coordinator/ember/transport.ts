/**
 * The byte stream to the dongle, with nothing but Node's standard library (the tool runs on a
 * zigbee2mqtt node that has `node` and no npm packages for us): a serial device configured with
 * stty and read and written through node:fs, or a TCP connection to a network-attached
 * coordinator (which serves one client: connect, work, close).
 */
import { spawn } from "node:child_process";
import { close as closeFd, constants, open as openFd, read, write } from "node:fs";
import { stat } from "node:fs/promises";
import { connect, type Socket } from "node:net";

export type FlowControl = "software" | "hardware" | "none";

export interface PortOptions {
  /** A device path, or tcp://host:port. */
  port: string;
  baud: number;
  flow: FlowControl;
  /** Connecting (TCP) or configuring (stty) may take this long. */
  openTimeoutMs: number;
}

export interface ByteLink {
  write(bytes: Buffer): void;
  /** Resolves once written bytes are handed to the OS and the port is closed. */
  close(): Promise<void>;
}

export interface LinkEvents {
  data(chunk: Buffer): void;
  /** The port went away (unplugged, socket reset, remote close); not called after our own close. */
  closed(reason: string): void;
}

/** Baud rates the Linux stty accepts for a USB-UART bridge (EmberZNet NCP images use 115200 or 460800). */
export const BAUD_RATES: readonly number[] = [
  9600, 19200, 38400, 57600, 115200, 230400, 460800, 500000, 576000, 921600, 1000000,
];

export function parseTcpPort(port: string): { host: string; port: number } | undefined {
  const m = /^tcp:\/\/(\[[^\]]+\]|[^:/]+):(\d{1,5})\/?$/.exec(port);
  if (!m) return undefined;
  const number = Number(m[2]);
  if (number < 1 || number > 65535) return undefined;
  return { host: m[1]!.replace(/^\[|\]$/g, ""), port: number };
}

/**
 * stty arguments for an ASH line: 8N1, raw bytes (no echo, no line editing, no CR/LF translation,
 * no signals), a read returning as soon as one byte is there, modem lines ignored (a USB bridge
 * may not drive DCD), and the flow control herdsman uses (software XON/XOFF unless RTS/CTS is
 * configured). Flow flags come after `raw`, which clears some of them.
 */
export function sttyArguments(path: string, baud: number, flow: FlowControl): string[] {
  const flowFlags =
    flow === "hardware"
      ? ["crtscts", "-ixon", "-ixoff"]
      : flow === "software"
        ? ["-crtscts", "ixon", "ixoff", "-ixany"]
        : ["-crtscts", "-ixon", "-ixoff"];
  return [
    "-F",
    path,
    String(baud),
    "raw",
    "-echo",
    "cs8",
    "-cstopb",
    "-parenb",
    "clocal",
    "cread",
    // DTR/RTS drop on the last close, as with node-serialport's default (what zigbee2mqtt opens with).
    "hupcl",
    "min",
    "1",
    "time",
    "0",
    ...flowFlags,
  ];
}

function runStty(args: string[], timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    // An argv array, never a shell: the path comes from the command line.
    const child = spawn("stty", args, { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`stty did not finish within ${timeoutMs} ms`));
    }, timeoutMs);
    child.once("error", (error) => {
      clearTimeout(timer);
      reject(new Error(`cannot run stty: ${error.message}`));
    });
    child.once("close", (code) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else reject(new Error(`stty ${args.slice(2).join(" ")} failed (exit ${code}): ${stderr.trim()}`));
    });
  });
}

function describeOpenError(path: string, error: NodeJS.ErrnoException): string {
  switch (error.code) {
    case "ENOENT":
      return `serial port ${path} does not exist (dongle unplugged or renamed?)`;
    case "EACCES":
    case "EPERM":
      return `no permission to open ${path} (is this user in the dialout group?)`;
    case "EBUSY":
      return `${path} is in use by another program (is zigbee2mqtt still running?)`;
    default:
      return `cannot open ${path}: ${error.message}`;
  }
}

/** Poll interval bounds while a non-blocking read finds nothing (after data or a write: the lower). */
const POLL_MIN_MS = 1;
const POLL_MAX_MS = 8;

/**
 * A serial device read and written through node:fs on a non-blocking descriptor. A blocking read
 * (what fs.createReadStream does) sits in a libuv worker thread until a byte arrives and cannot be
 * cancelled: Node then cannot even exit (it joins its worker threads), and a silent dongle leaves
 * the tool hanging. Non-blocking reads return EAGAIN at once, so the reader polls, briefly: the
 * interval starts at 1 ms after each byte or write and doubles to 8 ms while the line is idle,
 * well under ASH's 400 ms minimum acknowledgement timeout.
 */
class SerialFd {
  private readonly buffer = Buffer.alloc(512);
  private pollMs = POLL_MIN_MS;
  private pollTimer: NodeJS.Timeout | undefined;
  private reading: Promise<void> | undefined;
  private readonly writes: Buffer[] = [];
  private writing: Promise<void> | undefined;
  private closing = false;

  constructor(
    private readonly fd: number,
    private readonly onData: (chunk: Buffer) => void,
    private readonly onLost: (error: Error) => void,
  ) {}

  start(): void {
    this.readNext();
  }

  private readNext(): void {
    if (this.closing) return;
    this.reading = new Promise((resolve) => {
      read(this.fd, this.buffer, 0, this.buffer.length, null, (error, n) => {
        resolve();
        if (this.closing) return;
        if (error) {
          if (error.code === "EAGAIN" || error.code === "EWOULDBLOCK") return this.poll();
          // EIO: the USB device went away (or a pty's other end closed).
          return this.onLost(error);
        }
        if (n === 0) return this.onLost(new Error("end of file"));
        this.pollMs = POLL_MIN_MS;
        this.onData(Buffer.from(this.buffer.subarray(0, n)));
        this.readNext();
      });
    });
  }

  private poll(): void {
    this.pollTimer = setTimeout(() => {
      this.pollTimer = undefined;
      this.readNext();
    }, this.pollMs);
    this.pollMs = Math.min(POLL_MAX_MS, this.pollMs * 2);
  }

  write(bytes: Buffer): void {
    if (this.closing) return;
    this.writes.push(bytes);
    // An answer is coming: look for it soon.
    this.pollMs = POLL_MIN_MS;
    if (this.pollTimer) {
      clearTimeout(this.pollTimer);
      this.poll();
    }
    if (!this.writing)
      this.writing = this.pump().finally(() => {
        this.writing = undefined;
      });
  }

  /** Write queued chunks in order; a full output buffer (XOFF, RTS/CTS) answers EAGAIN: retry. */
  private async pump(): Promise<void> {
    while (this.writes.length > 0) {
      const chunk = this.writes[0]!;
      const written = await new Promise<number>((resolve) => {
        write(this.fd, chunk, 0, chunk.length, null, (error, n) => {
          if (!error) return resolve(n);
          if (error.code === "EAGAIN" || error.code === "EWOULDBLOCK") return resolve(0);
          this.writes.length = 0;
          this.onLost(error);
          resolve(-1);
        });
      });
      if (written < 0) return;
      if (written === chunk.length) this.writes.shift();
      else {
        this.writes[0] = chunk.subarray(written);
        if (written === 0) await new Promise((r) => setTimeout(r, POLL_MIN_MS));
      }
    }
  }

  /** Let queued bytes reach the OS (at most `flushMs`), stop reading, close the descriptor. */
  async close(flushMs = 1000): Promise<void> {
    if (this.closing) return;
    if (this.writing) await Promise.race([this.writing, new Promise((r) => setTimeout(r, flushMs))]);
    this.closing = true;
    if (this.pollTimer) clearTimeout(this.pollTimer);
    await this.reading;
    await new Promise<void>((resolve) => closeFd(this.fd, () => resolve()));
  }
}

/**
 * Open the serial device, then configure it with stty while our descriptor holds it open: the
 * settings belong to the device, and a pty whose other end waits for an opener (socat wait-slave,
 * the lab's simulator) would otherwise be replaced between stty's open and ours. O_NONBLOCK also
 * keeps open() from waiting for a carrier on a port without clocal.
 */
async function openSerial(options: PortOptions, events: LinkEvents): Promise<ByteLink> {
  const path = options.port;
  try {
    const info = await stat(path);
    if (!info.isCharacterDevice()) throw new Error(`${path} is not a serial device`);
  } catch (error) {
    const e = error as NodeJS.ErrnoException;
    throw new Error(e.code ? describeOpenError(path, e) : e.message);
  }
  const fd = await new Promise<number>((resolve, reject) => {
    // O_NOCTTY: the port must not become this process's controlling terminal (a hangup would kill us).
    openFd(path, constants.O_RDWR | constants.O_NOCTTY | constants.O_NONBLOCK, (error, n) => {
      if (error) reject(new Error(describeOpenError(path, error)));
      else resolve(n);
    });
  });
  try {
    await runStty(sttyArguments(path, options.baud, options.flow), options.openTimeoutMs);
  } catch (error) {
    await new Promise<void>((resolve) => closeFd(fd, () => resolve()));
    throw error;
  }
  let lost = false;
  const serial = new SerialFd(
    fd,
    (chunk) => events.data(chunk),
    (error) => {
      if (lost) return;
      lost = true;
      events.closed(`serial port ${path}: ${error.message}`);
    },
  );
  serial.start();
  return { write: (bytes) => serial.write(bytes), close: () => serial.close() };
}

async function openTcp(
  target: { host: string; port: number },
  options: PortOptions,
  events: LinkEvents,
): Promise<ByteLink> {
  const url = `tcp://${target.host}:${target.port}`;
  const socket: Socket = await new Promise((resolve, reject) => {
    const s = connect({ host: target.host, port: target.port });
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`cannot connect to ${url}: no answer within ${options.openTimeoutMs} ms`));
    }, options.openTimeoutMs);
    s.once("connect", () => {
      clearTimeout(timer);
      resolve(s);
    });
    s.once("error", (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(new Error(`cannot connect to ${url}: ${error.code ?? error.message}`));
    });
  });
  socket.setNoDelay(true);
  let closing = false;
  let failure: string | undefined;
  socket.on("data", (chunk: Buffer) => events.data(chunk));
  socket.on("error", (error: NodeJS.ErrnoException) => {
    failure = error.code ?? error.message;
  });
  socket.on("close", () => {
    if (closing) return;
    // A coordinator that serves one client drops a second one at once: the likely cause when the
    // connection ends right after it was accepted.
    events.closed(
      `${url} closed the connection${failure ? ` (${failure})` : ""} (is another client, zigbee2mqtt, connected?)`,
    );
  });
  return {
    write: (bytes) => {
      if (!closing) socket.write(bytes);
    },
    close: async () => {
      if (closing) return;
      closing = true;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          socket.destroy();
          resolve();
        }, 1000);
        socket.end(() => {
          clearTimeout(timer);
          socket.destroy();
          resolve();
        });
      });
    },
  };
}

export function openPort(options: PortOptions, events: LinkEvents): Promise<ByteLink> {
  if (options.port.startsWith("tcp://")) {
    const target = parseTcpPort(options.port);
    if (!target) return Promise.reject(new Error(`not a tcp://host:port address: ${options.port}`));
    return openTcp(target, options, events);
  }
  return openSerial(options, events);
}
