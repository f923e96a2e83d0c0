/**
 * CLI: run one simulated Z-Stack coordinator dongle.
 *
 *   node --import tsx test/lab/simulator/main.ts --state /var/lib/sim/dongle.json \
 *     --pty /dev/ttyUSB0 --control /run/sim/control.sock [--listen-tcp 127.0.0.1:16638] ...
 *
 * Prints one JSON line `{"event":"ready",...}` on stdout once every port is open; SIGTERM or SIGINT
 * exits cleanly (NV flushed, pty link and sockets removed).
 */
import { createWriteStream, readFileSync } from "node:fs";
import { Command, InvalidArgumentError } from "commander";
import { describeFrame } from "./frame.js";
import { type HostPortSpec, parseTcpSpec } from "./host-port.js";
import { LINK_MODES, type LinkMode, type LinkSettings, REALISTIC_LINK, resolveLink } from "./link.js";
import type { ZigpyNvramDump } from "./nv.js";
import { SimulatorService } from "./service.js";
import type { Logger } from "./simulator.js";

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

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

const program = new Command()
  .name("znp-simulator")
  .description("Simulated TI Z-Stack 3.x.0 (CC2652) coordinator dongle speaking MT")
  .requiredOption("--state <file>", "NV persisted here (created blank on first start)")
  .option("--ieee <hex>", "factory IEEE for a new state file, e.g. 00124b0012345678")
  .option("--seed-nvram <file>", "for a new state file: load this zigpy-znp nvram_read JSON into NV")
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
  .option("--frames-per-second <n>", "NWK frames per second while started and connected", nonNegative, 5)
  .option("--reset-delay-ms <n>", "delay from SYS.resetReq to SYS.resetInd", nonNegative, 300)
  .option("--step-delay-ms <n>", "spacing of formation/start-up callbacks", nonNegative, 150)
  .option(
    "--link <mode>",
    "serial line timing: instant (bytes pass at once) or realistic (115200 baud 8N1, chip latency, NV costs)",
    linkMode,
    "instant",
  )
  .option("--baud <n>", `realistic link: UART speed (default ${REALISTIC_LINK.baud})`, nonNegative)
  .option(
    "--latency-ms <n>",
    `realistic link: chip latency per request (default ${REALISTIC_LINK.requestLatencyMs})`,
    nonNegative,
  )
  .option(
    "--nv-write-ms <n>",
    `realistic link: extra per NV write/create (default ${REALISTIC_LINK.nvWriteMs})`,
    nonNegative,
  )
  .option(
    "--nv-delete-ms <n>",
    `realistic link: extra per NV delete (default ${REALISTIC_LINK.nvDeleteMs})`,
    nonNegative,
  )
  .option("--log <file>", "append the event log and an MT frame trace here (default: events on stderr)")
  .showHelpAfterError();

async function main(): Promise<void> {
  program.parse();
  const opts = program.opts<{
    state: string;
    ieee?: string;
    seedNvram?: string;
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
  if (listen.length === 0 && !opts.pty) {
    program.error("nothing to serve: give --listen-tcp, --listen-unix and/or --pty");
  }

  const stream = opts.log ? createWriteStream(opts.log, { flags: "a" }) : undefined;
  const write = (level: string, message: string) => {
    const line = `${new Date().toISOString()} ${level} ${message}\n`;
    if (stream) stream.write(line);
    else if (level !== "debug") process.stderr.write(line);
  };
  const log: Logger = { info: (m) => write("info", m), debug: (m) => write("debug", m) };

  let seedNvram: ZigpyNvramDump | undefined;
  if (opts.seedNvram) {
    try {
      seedNvram = JSON.parse(readFileSync(opts.seedNvram, "utf8")) as ZigpyNvramDump;
    } catch (error) {
      throw new Error(`--seed-nvram ${opts.seedNvram}: ${(error as Error).message}`);
    }
  }

  const service = new SimulatorService({
    statePath: opts.state,
    ieee: opts.ieee,
    seedNvram,
    listen,
    pty: opts.pty ? { path: opts.pty, group: opts.ptyGroup } : undefined,
    controlPath: opts.control,
    framesPerSecond: opts.framesPerSecond,
    resetDelayMs: opts.resetDelayMs,
    stepDelayMs: opts.stepDelayMs,
    link,
    log,
    trace: stream
      ? (direction, frame) =>
          write("frame", `${direction === "host->dongle" ? "<--" : "-->"} ${describeFrame(frame)}`)
      : undefined,
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
  const status = service.statusReply();
  process.stdout.write(
    `${JSON.stringify({ event: "ready", pid: process.pid, ...status, listen: service.hostAddresses, pty: opts.pty ?? null, control: opts.control ?? null })}\n`,
  );
}

main().catch((error: unknown) => {
  process.stderr.write(`znp-simulator: ${(error as Error).message}\n`);
  process.exit(1);
});
