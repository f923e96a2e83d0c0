/**
 * CLI: run one simulated Silicon Labs EFR32 EmberZNet NCP dongle (ASH + EZSP).
 *
 *   node --import tsx test/lab/simulator-ember/main.ts --state /var/lib/sim/ember.json \
 *     --pty /dev/ttyACM0 --control /run/sim/ember.sock [--listen-tcp 127.0.0.1:6638] ...
 *
 * Prints one JSON line `{"event":"ready",...}` on stdout once every port is open; SIGTERM or SIGINT
 * exits cleanly (tokens flushed, pty link and sockets removed).
 */
import { createWriteStream } from "node:fs";
import { Command, InvalidArgumentError } from "commander";
import { type HostPortSpec, parseTcpSpec } from "../simulator/host-port.js";
import {
  LINK_MODES,
  type LinkMode,
  type LinkSettings,
  REALISTIC_LINK,
  resolveLink,
} from "../simulator/link.js";
import { DEFAULT_EZSP_VERSION, EZSP_VERSIONS } from "./constants.js";
import type { Logger } from "./ncp.js";
import { EmberSimulatorService } from "./service.js";

function nonNegative(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError("must be a number ≥ 0");
  return n;
}

function linkMode(value: string): LinkMode {
  if (!(LINK_MODES as readonly string[]).includes(value))
    throw new InvalidArgumentError(`must be one of ${LINK_MODES.join(", ")}`);
  return value as LinkMode;
}

function ezspVersion(value: string): number {
  const n = Number(value);
  if (!EZSP_VERSIONS.has(n))
    throw new InvalidArgumentError(`must be one of ${[...EZSP_VERSIONS.keys()].join(", ")}`);
  return n;
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

const program = new Command()
  .name("ember-simulator")
  .description("Simulated Silicon Labs EFR32 coordinator (EmberZNet NCP) speaking ASH + EZSP")
  .requiredOption("--state <file>", "tokens persisted here (created blank on first start)")
  .option("--eui64 <hex>", "factory EUI64 for a new state file, e.g. 8c65a3fffe112233")
  .option("--custom-eui64 <hex>", "new state file only: MFG_CUSTOM_EUI_64 already written")
  .option(
    "--listen-tcp <host:port>",
    "serve the host connection on TCP (repeatable; port 0 = any free)",
    collect,
    [],
  )
  .option("--listen-unix <path>", "serve the host connection on a unix socket (repeatable)", collect, [])
  .option("--pty <path>", "present the dongle as a serial device at this path (via socat)")
  .option("--pty-group <name>", "group owning the pty device")
  .option("--control <path>", "control socket (JSON lines)")
  .option("--frames-per-second <n>", "NWK frames per second while the network is up", nonNegative, 5)
  .option("--reset-delay-ms <n>", "ASH RST to RSTACK (the chip's reboot)", nonNegative, 1000)
  .option(
    "--step-delay-ms <n>",
    "networkInit/formNetwork/leaveNetwork to their stack status callback",
    nonNegative,
    150,
  )
  .option(
    "--ezsp-version <n>",
    `EZSP protocol version of the firmware (${[...EZSP_VERSIONS.keys()].join(", ")})`,
    ezspVersion,
    DEFAULT_EZSP_VERSION,
  )
  .option(
    "--link <mode>",
    "serial line timing: instant or realistic (115200 baud 8N1, NCP latency, token writes)",
    linkMode,
    "instant",
  )
  .option("--baud <n>", `realistic link: UART speed (default ${REALISTIC_LINK.baud})`, nonNegative)
  .option(
    "--latency-ms <n>",
    `realistic link: NCP latency per request (default ${REALISTIC_LINK.requestLatencyMs})`,
    nonNegative,
  )
  .option(
    "--nv-write-ms <n>",
    `realistic link: extra per token write (default ${REALISTIC_LINK.nvWriteMs})`,
    nonNegative,
  )
  .option(
    "--nv-delete-ms <n>",
    `realistic link: extra per token erase (default ${REALISTIC_LINK.nvDeleteMs})`,
    nonNegative,
  )
  .option("--log <file>", "append the event log and an ASH/EZSP frame trace here (default: events on stderr)")
  .showHelpAfterError();

async function main(): Promise<void> {
  program.parse();
  const opts = program.opts<{
    state: string;
    eui64?: string;
    customEui64?: string;
    listenTcp: string[];
    listenUnix: string[];
    pty?: string;
    ptyGroup?: string;
    control?: string;
    framesPerSecond: number;
    resetDelayMs: number;
    stepDelayMs: number;
    ezspVersion: number;
    link: LinkMode;
    baud?: number;
    latencyMs?: number;
    nvWriteMs?: number;
    nvDeleteMs?: number;
    log?: string;
  }>();

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

  const stream = opts.log ? createWriteStream(opts.log, { flags: "a" }) : undefined;
  const write = (level: string, message: string) => {
    const line = `${new Date().toISOString()} ${level} ${message}\n`;
    if (stream) stream.write(line);
    else if (level !== "debug") process.stderr.write(line);
  };
  const log: Logger = { info: (m) => write("info", m), debug: (m) => write("debug", m) };

  const service = new EmberSimulatorService({
    statePath: opts.state,
    eui64: opts.eui64,
    customEui64: opts.customEui64,
    listen,
    pty: opts.pty ? { path: opts.pty, group: opts.ptyGroup } : undefined,
    controlPath: opts.control,
    framesPerSecond: opts.framesPerSecond,
    resetDelayMs: opts.resetDelayMs,
    stepDelayMs: opts.stepDelayMs,
    ezspVersion: opts.ezspVersion,
    link,
    log,
    trace: stream ? (line) => write("frame", line) : undefined,
  });

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info(`${signal}: shutting down`);
    try {
      await service.shutdown();
    } finally {
      stream?.end();
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

main().catch((error: unknown) => {
  process.stderr.write(`ember-simulator: ${(error as Error).message}\n`);
  process.exit(1);
});
