/**
 * CLI: run one simulated Silicon Labs EFR32 EmberZNet NCP dongle (ASH + EZSP).
 *
 *   node --import tsx test/lab/simulator-ember/main.ts --state /var/lib/sim/ember.json \
 *     --pty /dev/ttyACM0 --control /run/sim/ember.sock [--listen-tcp 127.0.0.1:6638] ...
 *
 * Prints one JSON line `{"event":"ready",...}` on stdout once every port is open; SIGTERM or SIGINT
 * exits cleanly (tokens flushed, pty link and sockets removed).
 */
import { Command, InvalidArgumentError } from "commander";
import {
  type CommonOpts,
  hostOptions,
  linkOptions,
  nonNegative,
  parseCommandLine,
  runMain,
  serve,
} from "../simulator/cli.js";
import { DEFAULT_EZSP_VERSION, EZSP_VERSIONS } from "./constants.js";
import { EmberSimulatorService } from "./service.js";

function ezspVersion(value: string): number {
  const n = Number(value);
  if (!EZSP_VERSIONS.has(n))
    throw new InvalidArgumentError(`must be one of ${[...EZSP_VERSIONS.keys()].join(", ")}`);
  return n;
}

const program = hostOptions(
  new Command()
    .name("ember-simulator")
    .description("Simulated Silicon Labs EFR32 coordinator (EmberZNet NCP) speaking ASH + EZSP")
    .requiredOption("--state <file>", "tokens persisted here (created blank on first start)")
    .option("--eui64 <hex>", "factory EUI64 for a new state file, e.g. 8c65a3fffe112233")
    .option("--custom-eui64 <hex>", "new state file only: MFG_CUSTOM_EUI_64 already written"),
)
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
  );
linkOptions(program, {
  link: "serial line timing: instant or realistic (115200 baud 8N1, NCP latency, token writes)",
  latency: "NCP latency per request",
  nvWrite: "token write",
  nvDelete: "token erase",
})
  .option("--log <file>", "append the event log and an ASH/EZSP frame trace here (default: events on stderr)")
  .showHelpAfterError();

async function main(): Promise<void> {
  const { opts, events, common } = parseCommandLine<
    CommonOpts & { eui64?: string; customEui64?: string; ezspVersion: number }
  >(program);
  const service = new EmberSimulatorService({
    ...common,
    eui64: opts.eui64,
    customEui64: opts.customEui64,
    ezspVersion: opts.ezspVersion,
    trace: events.toFile ? (line) => events.write("frame", line) : undefined,
  });
  await serve(service, events, opts);
}

runMain("ember-simulator", main);
