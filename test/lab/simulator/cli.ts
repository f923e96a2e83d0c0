/**
 * What both simulators' CLIs (main.ts) share: the options for the host's ports and the serial line,
 * the event log, and running the service until a signal, with the ready line a launcher waits for.
 */
import { createWriteStream } from "node:fs";
import { type Command, InvalidArgumentError } from "commander";
import type { ControlReply } from "./control.js";
import { type HostPortSpec, parseTcpSpec } from "./host-port.js";
import { LINK_MODES, type LinkMode, type LinkSettings, REALISTIC_LINK, resolveLink } from "./link.js";
import type { DongleServiceOptions } from "./service.js";
import type { Logger } from "./simulator.js";

export function nonNegative(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError("must be a number ≥ 0");
  return n;
}

function linkMode(value: string): LinkMode {
  if (!(LINK_MODES as readonly string[]).includes(value))
    throw new InvalidArgumentError(`must be one of ${LINK_MODES.join(", ")}`);
  return value as LinkMode;
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/** --listen-tcp, --listen-unix, --pty, --pty-group, --control. */
export function hostOptions(program: Command): Command {
  return program
    .option(
      "--listen-tcp <host:port>",
      "serve the host connection on TCP (repeatable; port 0 = any free)",
      collect,
      [],
    )
    .option("--listen-unix <path>", "serve the host connection on a unix socket (repeatable)", collect, [])
    .option("--pty <path>", "present the dongle as a serial device at this path (via socat)")
    .option("--pty-group <name>", "group owning the pty device")
    .option("--control <path>", "control socket (JSON lines)");
}

/** How a simulator's help names what the realistic line costs on its chip. */
export interface LinkWording {
  /** --link's description. */
  link: string;
  /** What the latency is, e.g. "chip latency per request". */
  latency: string;
  /** What costs nvWriteMs, e.g. "NV write/create". */
  nvWrite: string;
  /** What costs nvDeleteMs. */
  nvDelete: string;
}

/** --link and the realistic line's tuning. */
export function linkOptions(program: Command, wording: LinkWording): Command {
  return program
    .option("--link <mode>", wording.link, linkMode, "instant")
    .option("--baud <n>", `realistic link: UART speed (default ${REALISTIC_LINK.baud})`, nonNegative)
    .option(
      "--latency-ms <n>",
      `realistic link: ${wording.latency} (default ${REALISTIC_LINK.requestLatencyMs})`,
      nonNegative,
    )
    .option(
      "--nv-write-ms <n>",
      `realistic link: extra per ${wording.nvWrite} (default ${REALISTIC_LINK.nvWriteMs})`,
      nonNegative,
    )
    .option(
      "--nv-delete-ms <n>",
      `realistic link: extra per ${wording.nvDelete} (default ${REALISTIC_LINK.nvDeleteMs})`,
      nonNegative,
    );
}

/** The parsed values of the options every simulator has. */
export interface CommonOpts {
  state: string;
  listenTcp: string[];
  listenUnix: string[];
  pty?: string;
  ptyGroup?: string;
  control?: string;
  framesPerSecond: number;
  resetDelayMs: number;
  stepDelayMs: number;
  link: LinkMode;
  baud?: number;
  latencyMs?: number;
  nvWriteMs?: number;
  nvDeleteMs?: number;
  log?: string;
}

/**
 * Parse the command line and open the event log; a usage error (exit) when the ports or the line
 * asked for do not make sense.
 */
export function parseCommandLine<O extends CommonOpts>(
  program: Command,
): { opts: O; events: EventLog; common: DongleServiceOptions } {
  program.parse();
  const opts = program.opts<O>();
  const link: LinkSettings = {
    mode: opts.link,
    baud: opts.baud,
    latencyMs: opts.latencyMs,
    nvWriteMs: opts.nvWriteMs,
    nvDeleteMs: opts.nvDeleteMs,
  };
  try {
    resolveLink(link);
  } catch (error) {
    program.error(`--link: ${(error as Error).message}`);
  }
  const listen: HostPortSpec[] = [
    ...opts.listenTcp.map(parseTcpSpec),
    ...opts.listenUnix.map((path) => ({ kind: "unix" as const, path })),
  ];
  if (listen.length === 0 && !opts.pty)
    program.error("nothing to serve: give --listen-tcp, --listen-unix and/or --pty");
  const events = openEventLog(opts.log);
  return {
    opts,
    events,
    common: {
      statePath: opts.state,
      listen,
      pty: opts.pty ? { path: opts.pty, group: opts.ptyGroup } : undefined,
      controlPath: opts.control,
      framesPerSecond: opts.framesPerSecond,
      resetDelayMs: opts.resetDelayMs,
      stepDelayMs: opts.stepDelayMs,
      link,
      log: events.log,
    },
  };
}

/** The event log: a file (with the frame trace) when --log is given, else events on stderr. */
export interface EventLog {
  log: Logger;
  /** Whether lines go to a file, where a frame trace belongs. */
  readonly toFile: boolean;
  write(level: string, message: string): void;
  end(): void;
}

function openEventLog(path: string | undefined): EventLog {
  const stream = path ? createWriteStream(path, { flags: "a" }) : undefined;
  const write = (level: string, message: string) => {
    const line = `${new Date().toISOString()} ${level} ${message}\n`;
    if (stream) stream.write(line);
    else if (level !== "debug") process.stderr.write(line);
  };
  return {
    log: { info: (m) => write("info", m), debug: (m) => write("debug", m) },
    toFile: stream !== undefined,
    write,
    end: () => stream?.end(),
  };
}

/** What serve() runs. */
export interface Service {
  start(): Promise<void>;
  shutdown(): Promise<void>;
  statusReply(): ControlReply;
  readonly hostAddresses: string[];
}

/**
 * Start the service and print the ready line once every port is open; SIGTERM or SIGINT shut it
 * down cleanly and exit.
 */
export async function serve(
  service: Service,
  events: EventLog,
  opts: { pty?: string; control?: string },
): Promise<void> {
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    events.log.info(`${signal}: shutting down`);
    try {
      await service.shutdown();
    } finally {
      events.end();
      process.exit(0);
    }
  };
  process.on("SIGTERM", () => void stop("SIGTERM"));
  process.on("SIGINT", () => void stop("SIGINT"));

  await service.start();
  process.stdout.write(
    `${JSON.stringify({ event: "ready", pid: process.pid, ...service.statusReply(), listen: service.hostAddresses, pty: opts.pty ?? null, control: opts.control ?? null })}\n`,
  );
}

/** Run a CLI's main; a failure goes to stderr, prefixed with the program's name, and exits 1. */
export function runMain(name: string, main: () => Promise<void>): void {
  main().catch((error: unknown) => {
    process.stderr.write(`${name}: ${(error as Error).message}\n`);
    process.exit(1);
  });
}
