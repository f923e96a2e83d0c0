/**
 * The `tool-fault` fault: a zigpy-znp tool on a node fails, or corrupts what it writes, for the
 * next COUNT runs or every run. The node's python3 wrapper (files.ts) carries it out; this writes
 * and reads its order file, from the root namespace, in the node's faults dir (/run/lab-faults in
 * the node: the wrapper runs as zigbee and counts the order down).
 */
import { chmodSync, existsSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pythonWrapper } from "./files.js";
import type { Layout } from "./layout.js";

export const TOOL_FAULT_MODES = ["fail", "corrupt", "hang"] as const;
export type ToolFaultMode = (typeof TOOL_FAULT_MODES)[number];

export interface ToolFaultOptions {
  /** zigpy-znp tool module, e.g. nvram_write. */
  tool?: string;
  mode?: ToolFaultMode;
  /** How many runs it hits (default: every run). */
  times?: number;
  clear?: boolean;
}

function orderFile(layout: Layout, node: string): string {
  return join(layout.node(node).faults, "tool-fault");
}

/**
 * Sets (or with `clear` removes) the fault. Also brings the node's python3 wrapper up to date
 * (an instance brought up before the wrapper knew about faults), unless another fault replaced it.
 */
export function setToolFault(layout: Layout, venv: string, node: string, options: ToolFaultOptions): void {
  const file = orderFile(layout, node);
  if (options.clear) {
    rmSync(file, { force: true });
    return;
  }
  const { tool, mode } = options;
  if (!tool || !/^[a-z_]+$/.test(tool))
    throw new Error(`tool-fault: --tool must name a zigpy-znp tool (e.g. nvram_write), not ${tool}`);
  if (!mode || !TOOL_FAULT_MODES.includes(mode))
    throw new Error(`tool-fault: --mode must be one of ${TOOL_FAULT_MODES.join(", ")}, not ${mode}`);
  if (mode === "corrupt" && !["nvram_read", "network_backup"].includes(tool))
    throw new Error(
      "tool-fault: corrupt applies to tools that write a file (-o): nvram_read, network_backup",
    );
  const times = options.times ?? -1;
  if (!(Number.isInteger(times) && (times === -1 || times > 0)))
    throw new Error(`tool-fault: --times must be a positive whole number, not ${options.times}`);
  const wrapper = join(layout.node(node).bin, "python3");
  const current = pythonWrapper(venv);
  if (readFileSync(wrapper, "utf8").startsWith("#!/bin/sh\n# python3 of the zigpy-znp virtualenv")) {
    if (readFileSync(wrapper, "utf8") !== current) {
      writeFileSync(`${wrapper}.lab-tmp`, current, { mode: 0o755 });
      renameSync(`${wrapper}.lab-tmp`, wrapper);
    }
  }
  writeFileSync(`${file}.tmp`, `${tool} ${mode} ${times}\n`);
  chmodSync(`${file}.tmp`, 0o666);
  renameSync(`${file}.tmp`, file);
}

/** The fault in effect on a node, e.g. "nvram_write fail (every run)", or undefined. */
export function toolFaultOf(layout: Layout, node: string): string | undefined {
  const file = orderFile(layout, node);
  if (!existsSync(file)) return undefined;
  const [tool, mode, left] = readFileSync(file, "utf8").trim().split(/\s+/);
  if (left === "0") return undefined;
  return `${tool} ${mode} (${left === "-1" ? "every run" : `${left} more run${left === "1" ? "" : "s"}`})`;
}
