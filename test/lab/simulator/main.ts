/**
 * CLI: run one simulated Z-Stack coordinator dongle.
 *
 *   node --import tsx test/lab/simulator/main.ts --state /var/lib/sim/dongle.json \
 *     --pty /dev/ttyUSB0 --control /run/sim/control.sock [--listen-tcp 127.0.0.1:16638] ...
 *
 * Prints one JSON line `{"event":"ready",...}` on stdout once every port is open; SIGTERM or SIGINT
 * exits cleanly (NV flushed, pty link and sockets removed).
 */
import { readFileSync } from "node:fs";
import { Command } from "commander";
import {
  type CommonOpts,
  hostOptions,
  linkOptions,
  nonNegative,
  parseCommandLine,
  runMain,
  serve,
} from "./cli.js";
import { describeFrame } from "./frame.js";
import type { ZigpyNvramDump } from "./nv.js";
import { SimulatorService } from "./service.js";

const program = hostOptions(
  new Command()
    .name("znp-simulator")
    .description("Simulated TI Z-Stack 3.x.0 (CC2652) coordinator dongle speaking MT")
    .requiredOption("--state <file>", "NV persisted here (created blank on first start)")
    .option("--ieee <hex>", "factory IEEE for a new state file, e.g. 00124b0012345678")
    .option("--seed-nvram <file>", "for a new state file: load this zigpy-znp nvram_read JSON into NV"),
)
  .option("--frames-per-second <n>", "NWK frames per second while started and connected", nonNegative, 5)
  .option("--reset-delay-ms <n>", "delay from SYS.resetReq to SYS.resetInd", nonNegative, 300)
  .option("--step-delay-ms <n>", "spacing of formation/start-up callbacks", nonNegative, 150);
linkOptions(program, {
  link: "serial line timing: instant (bytes pass at once) or realistic (115200 baud 8N1, chip latency, NV costs)",
  latency: "chip latency per request",
  nvWrite: "NV write/create",
  nvDelete: "NV delete",
})
  .option("--log <file>", "append the event log and an MT frame trace here (default: events on stderr)")
  .showHelpAfterError();

async function main(): Promise<void> {
  const { opts, events, common } = parseCommandLine<CommonOpts & { ieee?: string; seedNvram?: string }>(
    program,
  );

  let seedNvram: ZigpyNvramDump | undefined;
  if (opts.seedNvram) {
    try {
      seedNvram = JSON.parse(readFileSync(opts.seedNvram, "utf8")) as ZigpyNvramDump;
    } catch (error) {
      throw new Error(`--seed-nvram ${opts.seedNvram}: ${(error as Error).message}`);
    }
  }

  const service = new SimulatorService({
    ...common,
    ieee: opts.ieee,
    seedNvram,
    trace: events.toFile
      ? (direction, frame) =>
          events.write("frame", `${direction === "host->dongle" ? "<--" : "-->"} ${describeFrame(frame)}`)
      : undefined,
  });
  await serve(service, events, opts);
}

runMain("znp-simulator", main);
