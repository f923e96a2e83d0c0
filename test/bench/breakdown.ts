/**
 * Where a zigpy-znp call spends its time on a node: process start-up (Python, imports),
 * opening the port and zigpy-znp's DTR/RTS toggling, the ZNP handshake (ping, alignment, version
 * detection), the transfer of the items, and closing. The start and end are the bench's clock
 * around the call; the points in between are the dongle's own log (its frame trace), on the same
 * machine's clock.
 */
import { closeSync, openSync, readSync, statSync } from "node:fs";
import type { HostId, Lab } from "../lab/world.js";

export interface Phases {
  total: number;
  /** exec → the port opened (the dongle sees a host): nsenter, Python, imports, argument parsing. */
  startup: number;
  /** port open → first request: zigpy-znp toggles DTR/RTS three times, 150 ms apart, before it pings. */
  portOpen: number;
  /** first request → the reply to its version detection (SYS.nvRead of TCLK_TABLE). */
  handshake: number;
  /** the tool's own requests, up to the last frame. */
  transfer: number;
  /** last frame → the process has exited. */
  exit: number;
  /** Requests (SREQ and AREQ) the host sent in the session. */
  requests: number;
}

interface LogLine {
  t: number;
  text: string;
}

function readFrom(path: string, offset: number): string {
  const size = statSync(path).size;
  if (size <= offset) return "";
  const fd = openSync(path, "r");
  try {
    const buffer = Buffer.alloc(size - offset);
    readSync(fd, buffer, 0, buffer.length, offset);
    return buffer.toString("utf8");
  } finally {
    closeSync(fd);
  }
}

function parse(text: string): LogLine[] {
  const lines: LogLine[] = [];
  for (const line of text.split("\n")) {
    const space = line.indexOf(" ");
    if (space < 0) continue;
    const t = Date.parse(line.slice(0, space));
    if (!Number.isNaN(t)) lines.push({ t, text: line.slice(space + 1) });
  }
  return lines;
}

/** Runs a zigpy-znp tool on a node the way lab.znp does (as zigbee, in dialout) and splits its time. */
export async function timedTool(
  lab: Lab,
  node: HostId,
  tool: string,
  args: string[],
): Promise<{ code: number; stderr: string; phases: Phases }> {
  const log = lab.node(node).simulator.log;
  const offset = statSync(log).size;
  const t0 = Date.now();
  const result = await lab.znp(node, tool, args, { timeout: 900_000 });
  const t1 = Date.now();
  // The dongle learns that the port closed a moment after the tool exited (socat reads EIO).
  const deadline = Date.now() + 5_000;
  while ((await lab.simulator(node).status()).host_connected && Date.now() < deadline)
    await new Promise((r) => setTimeout(r, 20));
  const lines = parse(readFrom(log, offset));
  const connected = lines.find((l) => l.text.startsWith("info host connected"))?.t ?? t0;
  const frames = lines.filter((l) => l.text.startsWith("frame "));
  const first = frames.find((l) => l.text.startsWith("frame <--"))?.t ?? connected;
  const handshakeEnd = frames.find((l) => l.text.startsWith("frame --> SRSP SYS 0x33"))?.t ?? first;
  const last = frames.at(-1)?.t ?? handshakeEnd;
  return {
    code: result.code,
    stderr: result.stderr,
    phases: {
      total: t1 - t0,
      startup: connected - t0,
      portOpen: first - connected,
      handshake: handshakeEnd - first,
      transfer: last - handshakeEnd,
      exit: t1 - last,
      requests: frames.filter((l) => /^frame <-- (SREQ|AREQ)/.test(l.text)).length,
    },
  };
}

/**
 * The parts of a process start on a node, each the fastest of `runs` (other load on the machine
 * only ever adds): what every tool call pays first.
 */
export async function startupParts(lab: Lab, node: HostId, runs = 5) {
  const time = async (argv: string[]) => {
    const values: number[] = [];
    for (let i = 0; i < runs; i++) {
      const t = Date.now();
      await lab.execOk(node, argv, { user: "zigbee" });
      values.push(Date.now() - t);
    }
    return Math.min(...values);
  };
  const help = ["-m", "zigpy_znp.tools.nvram_read", "--help"];
  const exec = await time(["true"]);
  const python = await time(["python3", "-c", "pass"]);
  const tool = await time(["python3", ...help]);
  return {
    /** nsenter + setpriv + exec of a trivial command: the lab's own cost, not the node's. */
    exec,
    python: python - exec,
    imports: tool - python,
  };
}

type Dump = Record<string, Record<string, string>>;

/** The items of `source` that `target` does not hold with the same value: what a delta write sends. */
export function delta(source: Dump, target: Dump): { dump: Dump; items: number } {
  const dump: Dump = {};
  let items = 0;
  for (const [section, entries] of Object.entries(source)) {
    for (const [key, value] of Object.entries(entries)) {
      if (target[section]?.[key] === value) continue;
      dump[section] ??= {};
      dump[section][key] = value;
      items++;
    }
  }
  return { dump, items };
}

export function countItems(dump: Dump): number {
  return Object.values(dump).reduce((n, entries) => n + Object.keys(entries).length, 0);
}
