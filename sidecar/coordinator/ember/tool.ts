/**
 * The node tool's command line (dist/ember-tool.js, docs/ember-tool.md): parse the arguments, open
 * the port, run one operation, print exactly one JSON object on stdout. Exit 0 with the result, 1
 * with {"error": …} when the operation failed, 2 with {"error": …} for a usage error.
 */
import { EzspHost } from "./host.js";
import { Deadline, ncpInfo, parkNcp, parseEui64, setCustomEui64, wipeNcp } from "./operations.js";
import { BAUD_RATES, type ByteLink, type FlowControl, openPort, parseTcpPort } from "./transport.js";

export const COMMANDS = ["info", "park", "wipe", "set-eui64"] as const;
export type ToolCommand = (typeof COMMANDS)[number];

export interface ToolArgs {
  command: ToolCommand;
  port: string;
  baud: number;
  flow: FlowControl;
  timeoutMs: number;
  /** set-eui64 only: MSB first, lowercase hex without 0x. */
  eui64: string | undefined;
  /** ASH and EZSP frames on stderr. */
  trace: boolean;
  /** info only: read the network too (it starts it for a moment); false with --no-network. */
  network: boolean;
}

export const DEFAULT_TIMEOUT_MS = 20_000;
const MIN_TIMEOUT_MS = 1000;
const MAX_TIMEOUT_MS = 600_000;

export const USAGE = `usage: node ember-tool.js <info|park|wipe|set-eui64> --port <PATH|tcp://HOST:PORT>
         [--baud 115200] [--flow software|hardware|none] [--timeout-ms ${DEFAULT_TIMEOUT_MS}]
         [--eui64 HEX (set-eui64 only)] [--no-network (info only)] [--trace]
Manages an EmberZNet NCP (EZSP over ASH) while zigbee2mqtt is stopped; prints one JSON object.
  info       the NCP's versions, EUI64, custom EUI64 token and the network in its tokens (then parks it;
             --no-network: without starting the network to read it, so nothing goes on the air)
  park       ASH reset: the network stops until a host calls networkInit; tokens untouched
  wipe       erase the network from the tokens without starting it; the NCP is left without a network
  set-eui64  write the one-time MFG_CUSTOM_EUI_64 token (16 hex digits, most significant first)
Exit status: 0 success, 1 failure ({"error": ...}), 2 usage error.`;

export class UsageError extends Error {}

function integer(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!/^\d+$/.test(value))
    throw new UsageError(`--${name} must be a whole number, not ${JSON.stringify(value)}`);
  return Number(value);
}

const VALUE_OPTIONS = new Set(["port", "baud", "flow", "timeout-ms", "eui64"]);
const FLAG_OPTIONS = new Set(["trace", "no-network"]);

interface RawArgs {
  values: Partial<Record<"port" | "baud" | "flow" | "timeout-ms" | "eui64", string>> & {
    trace?: boolean;
    "no-network"?: boolean;
  };
  positionals: string[];
}

/**
 * `--name value`, `--name=value`, `--flag`, positionals. Hand-written rather than util.parseArgs,
 * which Node 18.0–18.2 lack: the tool runs on whatever Node >= 18 the node has.
 */
function parse(argv: string[]): RawArgs {
  const values: RawArgs["values"] = {};
  const positionals: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith("--")) {
      if (arg.startsWith("-") && arg !== "-") throw new UsageError(`unknown option ${JSON.stringify(arg)}`);
      positionals.push(arg);
      continue;
    }
    const eq = arg.indexOf("=");
    const name = eq < 0 ? arg.slice(2) : arg.slice(2, eq);
    if (FLAG_OPTIONS.has(name)) {
      if (eq >= 0) throw new UsageError(`--${name} takes no value`);
      (values as Record<string, boolean>)[name] = true;
    } else if (VALUE_OPTIONS.has(name)) {
      let value: string | undefined;
      if (eq >= 0) value = arg.slice(eq + 1);
      else {
        value = argv[i + 1];
        // "--port --baud 1": the value is missing, not "--baud"
        if (value === undefined || value.startsWith("--")) throw new UsageError(`--${name} needs a value`);
        i++;
      }
      if (values[name as keyof RawArgs["values"]] !== undefined)
        throw new UsageError(`--${name} given more than once`);
      (values as Record<string, string>)[name] = value;
    } else {
      throw new UsageError(`unknown option ${JSON.stringify(`--${name}`)}`);
    }
  }
  return { values, positionals };
}

/** The arguments after `node ember-tool.js`; throws UsageError on anything it cannot use. */
export function parseToolArgs(argv: string[]): ToolArgs {
  const { values, positionals } = parse(argv);
  if (positionals.length !== 1)
    throw new UsageError(
      positionals.length === 0
        ? "no command given"
        : `one command expected, got ${positionals.map((p) => JSON.stringify(p)).join(" ")}`,
    );
  const command = positionals[0]!;
  if (!(COMMANDS as readonly string[]).includes(command))
    throw new UsageError(`unknown command ${JSON.stringify(command)} (${COMMANDS.join(", ")})`);

  const port = values.port;
  if (port === undefined || port === "") throw new UsageError("--port is required");
  if (port.startsWith("tcp://")) {
    if (!parseTcpPort(port)) throw new UsageError(`--port ${JSON.stringify(port)} is not tcp://host:port`);
  } else if (!port.startsWith("/")) {
    throw new UsageError(
      `--port must be an absolute device path or tcp://host:port, not ${JSON.stringify(port)}`,
    );
  }

  const baud = integer("baud", values.baud, 115200);
  if (!BAUD_RATES.includes(baud))
    throw new UsageError(`--baud ${baud} is not one of ${BAUD_RATES.join(", ")}`);

  const flow = values.flow ?? "software";
  if (flow !== "software" && flow !== "hardware" && flow !== "none")
    throw new UsageError(`--flow must be software, hardware or none, not ${JSON.stringify(flow)}`);

  const timeoutMs = integer("timeout-ms", values["timeout-ms"], DEFAULT_TIMEOUT_MS);
  if (timeoutMs < MIN_TIMEOUT_MS || timeoutMs > MAX_TIMEOUT_MS)
    throw new UsageError(`--timeout-ms must be between ${MIN_TIMEOUT_MS} and ${MAX_TIMEOUT_MS}`);

  let eui64: string | undefined;
  if (command === "set-eui64") {
    if (values.eui64 === undefined) throw new UsageError("set-eui64 needs --eui64 HEX");
    eui64 = parseEui64(values.eui64);
    if (eui64 === undefined)
      throw new UsageError(
        `--eui64 ${JSON.stringify(values.eui64)} is not an EUI64 (16 hex digits, optionally 0x-prefixed, not all 0 or all F)`,
      );
  } else if (values.eui64 !== undefined) {
    throw new UsageError(`--eui64 is only for set-eui64, not ${command}`);
  }
  return {
    command: command as ToolCommand,
    port,
    baud,
    flow,
    timeoutMs,
    eui64,
    trace: values.trace ?? false,
    network: !values["no-network"],
  };
}

export interface ToolIo {
  stdout(line: string): void;
  stderr(line: string): void;
  /** Install SIGINT/SIGTERM/SIGHUP handlers that stop the operation (and park the NCP) first. */
  handleSignals?: boolean;
}

async function operate(args: ToolArgs, host: EzspHost, deadline: Deadline): Promise<object> {
  switch (args.command) {
    case "info":
      return ncpInfo(host, deadline, { network: args.network });
    case "park":
      return parkNcp(host, deadline);
    case "wipe":
      return wipeNcp(host, deadline);
    case "set-eui64":
      return setCustomEui64(host, args.eui64!, deadline);
  }
}

/** Run the tool; resolves with the exit status once its one JSON line is written. */
export async function runTool(argv: string[], io: ToolIo): Promise<number> {
  if (argv.includes("--help") || argv.includes("-h")) {
    io.stdout(USAGE);
    return 0;
  }
  let args: ToolArgs;
  try {
    args = parseToolArgs(argv);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    io.stderr(USAGE);
    io.stdout(JSON.stringify({ error: `usage: ${error.message}` }));
    return 2;
  }

  const started = Date.now();
  const trace = args.trace
    ? (line: string) => io.stderr(`${String(Date.now() - started).padStart(6)} ms ${line}`)
    : undefined;
  let link: ByteLink | undefined;
  const host = new EzspHost({ write: (bytes) => link?.write(bytes), trace });
  const deadline = new Deadline(args.timeoutMs);

  const signals: NodeJS.Signals[] = ["SIGINT", "SIGTERM", "SIGHUP"];
  const onSignal = (signal: NodeJS.Signals) => host.interrupt(`interrupted by ${signal}`);
  if (io.handleSignals) for (const s of signals) process.on(s, onSignal);

  // The last resort if something hangs beyond every step's own timeout.
  let hardTimer: NodeJS.Timeout | undefined;
  const hardLimit = new Promise<never>((_, reject) => {
    hardTimer = setTimeout(
      () => reject(new Error(`gave up after ${args.timeoutMs + deadline.cleanupMs} ms`)),
      args.timeoutMs + deadline.cleanupMs,
    );
  });
  try {
    const result = await Promise.race([
      (async () => {
        link = await openPort(
          {
            port: args.port,
            baud: args.baud,
            flow: args.flow,
            openTimeoutMs: Math.min(5000, args.timeoutMs),
          },
          { data: (chunk) => host.receive(chunk), closed: (reason) => host.closed(reason) },
        );
        return operate(args, host, deadline);
      })(),
      hardLimit,
    ]);
    trace?.(`done: ${JSON.stringify(host.stats)}`);
    io.stdout(JSON.stringify(result));
    return 0;
  } catch (error) {
    trace?.(`failed: ${JSON.stringify(host.stats)}`);
    io.stdout(JSON.stringify({ error: (error as Error).message }));
    return 1;
  } finally {
    clearTimeout(hardTimer);
    host.close();
    await link?.close().catch(() => {});
    if (io.handleSignals) for (const s of signals) process.off(s, onSignal);
  }
}
