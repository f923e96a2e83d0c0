/**
 * The dongle's flash on disk: NV contents plus what the chip itself remembers (its factory IEEE and
 * the highest network frame counter it ever used). Written atomically (temp file, fsync, rename)
 * so a killed simulator leaves either the old or the new state, never a torn file.
 */
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from "node:fs";
import { dirname } from "node:path";
import { NvStore } from "./nv.js";

export const STATE_FORMAT = "zigbee2mqtt-ha/znp-simulator-state";

export interface SimulatorState {
  /** Factory (hardware) IEEE, most significant byte first; what EXTADDR is recreated from. */
  hardwareIeee: string;
  maxNwkFrameCounter: number;
  nv: NvStore;
}

/**
 * A state file's JSON after checking it is `format` version 1 (both simulators' files are);
 * undefined when there is none yet.
 */
export function readStateFile(path: string, format: string): Record<string, unknown> | undefined {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch (error) {
    throw new Error(`state file ${path} is not valid JSON: ${(error as Error).message}`);
  }
  if (json.format !== format || json.version !== 1) {
    throw new Error(`state file ${path} is not a ${format} version 1 file`);
  }
  return json;
}

export function loadState(path: string): SimulatorState | undefined {
  const json = readStateFile(path, STATE_FORMAT);
  if (!json) return undefined;
  const hardwareIeee = json.hardware_ieee;
  if (typeof hardwareIeee !== "string" || !/^[0-9a-f]{16}$/.test(hardwareIeee)) {
    throw new Error(`state file ${path}: hardware_ieee must be 16 lowercase hex digits`);
  }
  const max = json.max_nwk_frame_counter;
  if (typeof max !== "number" || !Number.isInteger(max) || max < 0 || max > 0xffffffff) {
    throw new Error(`state file ${path}: max_nwk_frame_counter must be a uint32`);
  }
  let nv: NvStore;
  try {
    nv = NvStore.fromJSON(json.nv);
  } catch (error) {
    throw new Error(`state file ${path}: ${(error as Error).message}`);
  }
  return { hardwareIeee, maxNwkFrameCounter: max, nv };
}

export function serializeState(state: SimulatorState): string {
  return `${JSON.stringify(
    {
      format: STATE_FORMAT,
      version: 1,
      hardware_ieee: state.hardwareIeee,
      max_nwk_frame_counter: state.maxNwkFrameCounter,
      nv: state.nv.toJSON(),
    },
    null,
    1,
  )}\n`;
}

export function writeFileAtomic(path: string, contents: string): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, "w", 0o600);
  try {
    writeSync(fd, contents);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  // The rename itself must reach the disk too, or a power cut could bring back the old file.
  const dirFd = openSync(dirname(path), "r");
  try {
    fsyncSync(dirFd);
  } finally {
    closeSync(dirFd);
  }
}

/** Coalesces bursts of changes (nvram_write makes ~1000) into one write per `delayMs`. */
export class DebouncedWriter {
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly write: () => void,
    private readonly delayMs: number,
  ) {}

  schedule(): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.write();
    }, this.delayMs);
  }

  flush(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    this.write();
  }

  cancel(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}
