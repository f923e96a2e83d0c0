/**
 * The serial line between a host and the NCP, with time: the Z-Stack simulator's model
 * (../simulator/link.ts: 115200 baud 8N1, bytes back to back per direction, a per-request chip
 * latency, extra time for flash writes, an injected clock), run with the ASH framing below.
 *
 * What differs is what counts as a request: ASH frames end with a flag byte. A DATA frame (an EZSP
 * command) or an RST is handed to the chip `requestLatencyMs` after its flag arrived, one at a time
 * in order, plus `nvWriteMs` for EZSP commands that write NVM3 tokens or the manufacturing token
 * and `nvDeleteMs` for the factory reset of the tokens. ACK and NAK frames and stray bytes are
 * handled by the NCP's UART driver as they arrive: line time only, outside the chip's queue.
 */

import {
  ASH_FLIP,
  ASH_MIN_DATA,
  AshByte,
  AshControl,
  randomize,
} from "../../../sidecar/coordinator/ember/ash.js";
import { FrameId } from "../../../sidecar/coordinator/ember/constants.js";
import {
  type Clock,
  type LineFraming,
  type LinkEnds,
  type LinkProfile,
  type LinkStats,
  SerialLink,
} from "../simulator/link.js";

/** EZSP commands whose handling programs flash (NVM3 or the USERDATA page). */
const TOKEN_WRITES: ReadonlySet<number> = new Set([
  FrameId.FORM_NETWORK,
  FrameId.LEAVE_NETWORK,
  FrameId.SET_INITIAL_SECURITY_STATE,
  FrameId.SET_MFG_TOKEN,
  FrameId.IMPORT_LINK_KEY,
  FrameId.ERASE_KEY_TABLE_ENTRY,
  FrameId.CLEAR_KEY_TABLE,
]);
const TOKEN_ERASES: ReadonlySet<number> = new Set([FrameId.TOKEN_FACTORY_RESET]);

/**
 * What a chunk of wire bytes ending at a flag is, without the decoder's state: the serial-line model
 * uses it to decide how long the chip works on it. `ezspFrameId` is set for DATA frames that carry
 * an extended EZSP header (the legacy VERSION command has frame id 0 in byte 2).
 */
export function classifyAshChunk(
  chunk: Uint8Array,
): { kind: "data"; ezspFrameId: number } | { kind: "rst" } | { kind: "other" } {
  // Only the part after the last CANCEL belongs to the frame this flag ends.
  let start = 0;
  for (let i = 0; i < chunk.length; i++) if (chunk[i] === AshByte.CANCEL) start = i + 1;
  const bytes: number[] = [];
  let escaped = false;
  for (let i = start; i < chunk.length; i++) {
    const byte = chunk[i]!;
    if (byte === AshByte.FLAG) break;
    if (byte === AshByte.ESCAPE) {
      escaped = true;
      continue;
    }
    if (byte === AshByte.XON || byte === AshByte.XOFF || byte === AshByte.SUBSTITUTE) continue;
    if (byte === AshByte.WAKE && bytes.length === 0 && !escaped) continue;
    bytes.push(escaped ? byte ^ ASH_FLIP : byte);
    escaped = false;
  }
  const control = bytes[0];
  if (control === undefined) return { kind: "other" };
  if (control === AshControl.RST) return { kind: "rst" };
  if ((control & 0x80) !== 0 || bytes.length < 1 + ASH_MIN_DATA + 2) return { kind: "other" };
  const data = randomize(Buffer.from(bytes.slice(1, Math.min(bytes.length - 2, 6))));
  const legacy = data.length < 5 || (data[2]! & 0x03) !== 0x01;
  return { kind: "data", ezspFrameId: legacy ? (data[2] ?? 0) : data[3]! | (data[4]! << 8) };
}

/** How long the NCP works on an ASH frame from the host; undefined: not a request (ACK, NAK, noise). */
export function ashProcessingMs(chunk: Uint8Array, profile: LinkProfile): number | undefined {
  const kind = classifyAshChunk(chunk);
  if (kind.kind === "rst") return profile.requestLatencyMs;
  if (kind.kind !== "data") return undefined;
  let ms = profile.requestLatencyMs;
  if (TOKEN_WRITES.has(kind.ezspFrameId)) ms += profile.nvWriteMs;
  if (TOKEN_ERASES.has(kind.ezspFrameId)) ms += profile.nvDeleteMs;
  return ms;
}

/** ASH frames end at a flag; only DATA and RST frames queue for the chip (see the module comment). */
export const ASH_FRAMING: LineFraming = {
  pieceLength: (pending) => pending.indexOf(AshByte.FLAG) + 1,
  chipMs: ashProcessingMs,
};

/** One host session on a timed serial line speaking ASH. */
export class AshSerialLink extends SerialLink {
  constructor(profile: LinkProfile, ends: LinkEnds, clock?: Clock, stats?: LinkStats) {
    super(profile, ends, clock, stats, ASH_FRAMING);
  }
}
