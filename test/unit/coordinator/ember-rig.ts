/**
 * In-process rigs for the node tool's EZSP host: the lab's simulated NCP behind a line that can
 * drop or damage chosen frames, and a scripted fake NCP for what the simulator does not do (old
 * EZSP versions, silence, ASH ERROR, refusals).
 */
import {
  ASH_RESERVED,
  ASH_VERSION,
  AshDecoder,
  type AshFrame,
  encodeAshFrame,
  ResetCode,
} from "../../../sidecar/coordinator/ember/ash.js";
import { FrameId } from "../../../sidecar/coordinator/ember/constants.js";
import { decodeEzspCommand, encodeEzspResponse } from "../../../sidecar/coordinator/ember/ezsp-frame.js";
import { EzspHost, type EzspHostOptions } from "../../../sidecar/coordinator/ember/host.js";
import { EmberNcp, type HostLink } from "../../lab/simulator-ember/ncp.js";
import { blankTokens, type NetworkTokens, type Tokens } from "../../lab/simulator-ember/state-file.js";

export const FACTORY = "8c65a3fffe0000a1";
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Which frame of a direction to tamper with: return "drop", "corrupt" or nothing. */
export type Tamper = (frame: AshFrame, index: number) => "drop" | "corrupt" | undefined;

/** Decodes each written chunk (one frame per write on both sides) so a test can pick frames. */
class Line {
  private readonly decoder = new AshDecoder();
  private count = 0;
  readonly dropped: AshFrame[] = [];
  readonly corrupted: AshFrame[] = [];
  tamper: Tamper | undefined;

  constructor(private readonly deliver: (bytes: Buffer) => void) {}

  send(bytes: Buffer): void {
    const frames = this.decoder.push(bytes).flatMap((d) => (d.kind === "frame" ? [d.frame] : []));
    const frame = frames[frames.length - 1];
    const action = frame && this.tamper ? this.tamper(frame, this.count++) : undefined;
    if (action === "drop") {
      this.dropped.push(frame!);
      return;
    }
    let out = bytes;
    if (action === "corrupt") {
      this.corrupted.push(frame!);
      out = Buffer.from(bytes);
      // Flip a bit of the byte after the control byte (never into a reserved byte, which would
      // split or cancel the frame instead): the CRC no longer matches.
      const i = Math.min(1, out.length - 2);
      const flipped = out[i]! ^ 0x04;
      out[i] = ASH_RESERVED.has(flipped) ? out[i]! ^ 0x40 : flipped;
    }
    setImmediate(() => this.deliver(out));
  }
}

export interface SimRig {
  ncp: EmberNcp;
  host: EzspHost;
  tokens: Tokens;
  /** host → NCP */
  toNcp: Line;
  /** NCP → host */
  toHost: Line;
}

export function networkTokens(overrides: Partial<NetworkTokens> = {}): NetworkTokens {
  return {
    nodeType: 1,
    nodeId: 0,
    panId: 0x1a62,
    extendedPanId: "1122334455667788",
    channel: 15,
    radioTxPower: 5,
    joinMethod: 0,
    nwkManagerId: 0,
    nwkUpdateId: 0,
    channels: 0x07fff800,
    networkKey: "0102030405060708090a0b0c0d0e0f10",
    networkKeySequence: 0,
    tcLinkKey: "5a".repeat(16),
    securityBitmask: 0,
    extendedSecurityBitmask: 0,
    ...overrides,
  };
}

const powered: EmberNcp[] = [];

export function powerOffAll(): void {
  for (const ncp of powered.splice(0)) ncp.powerOff();
}

export function simRig(
  options: { tokens?: Tokens; ezspVersion?: number; fps?: number; host?: Partial<EzspHostOptions> } = {},
): SimRig {
  const tokens = options.tokens ?? blankTokens();
  const ncp = new EmberNcp({
    tokens,
    factoryEui64: FACTORY,
    maxNwkFrameCounter: 0,
    framesPerSecond: options.fps ?? 0,
    resetDelayMs: 5,
    stepDelayMs: 5,
    counterTickMs: 20,
    ezspVersion: options.ezspVersion,
  });
  powered.push(ncp);
  ncp.powerOn();
  let host: EzspHost | undefined;
  const toHost = new Line((bytes) => host?.receive(bytes));
  const link: HostLink = { label: "unit", write: (bytes) => toHost.send(bytes), close: () => {} };
  const toNcp = new Line((bytes) => ncp.receive(link, bytes));
  host = new EzspHost({ write: (bytes) => toNcp.send(bytes), ackTimeoutMs: 100, ...options.host });
  if (!ncp.attachHost(link)) throw new Error("the simulated NCP refused the host");
  return { ncp, host, tokens, toNcp, toHost };
}

export interface FakeCommand {
  sequence: number;
  frameId: number;
  legacy: boolean;
  parameters: Buffer;
}

/** What the fake NCP answers: parameters (same frame id), another frame, or nothing at all. */
export type FakeAnswer = Buffer | { frameId: number; parameters: Buffer } | undefined;

/**
 * A scripted NCP: RSTACK after an RST, an ACK and the script's answer for every DATA frame, and
 * whatever raw frames a test injects. It tracks frame numbers but never retransmits.
 */
export class FakeNcp {
  private readonly decoder = new AshDecoder();
  private frmTx = 0;
  private frmRx = 0;
  readonly commands: FakeCommand[] = [];
  host: EzspHost;
  answerRst = true;
  /** Ignore DATA frames altogether (no ACK): an NCP that hangs or a line that lost sync. */
  deaf = false;

  constructor(
    private readonly script: (command: FakeCommand) => FakeAnswer,
    hostOptions: Partial<EzspHostOptions> = {},
  ) {
    this.host = new EzspHost({
      write: (bytes) => setImmediate(() => this.receive(bytes)),
      ackTimeoutMs: 50,
      commandTimeoutMs: 500,
      ...hostOptions,
    });
  }

  sendFrame(frame: AshFrame): void {
    const bytes = encodeAshFrame(frame);
    setImmediate(() => this.host.receive(bytes));
  }

  /** A callback frame (asynchronous-callback bit) as the NCP sends it unasked. */
  sendCallback(frameId: number, parameters: Buffer): void {
    this.sendData(encodeEzspResponse({ sequence: 0, frameId, parameters, callback: true }));
  }

  private sendData(data: Buffer): void {
    this.sendFrame({ kind: "data", frmNum: this.frmTx, ackNum: this.frmRx, reTx: false, data });
    this.frmTx = (this.frmTx + 1) & 7;
  }

  private receive(bytes: Buffer): void {
    for (const decoded of this.decoder.push(bytes)) {
      if (decoded.kind !== "frame") continue;
      const frame = decoded.frame;
      if (frame.kind === "rst") {
        if (!this.answerRst) continue;
        this.frmTx = 0;
        this.frmRx = 0;
        setTimeout(
          () => this.sendFrame({ kind: "rstack", version: ASH_VERSION, code: ResetCode.SOFTWARE }),
          1,
        );
      } else if (frame.kind === "data" && !this.deaf && frame.frmNum === this.frmRx) {
        this.frmRx = (this.frmRx + 1) & 7;
        const command = decodeEzspCommand(frame.data);
        const entry = {
          sequence: command.sequence,
          frameId: command.frameId,
          legacy: command.legacy,
          parameters: command.parameters,
        };
        this.commands.push(entry);
        const answer = this.script(entry);
        if (answer === undefined) {
          this.sendFrame({ kind: "ack", ackNum: this.frmRx, notReady: false });
          continue;
        }
        const { frameId, parameters } = Buffer.isBuffer(answer)
          ? { frameId: command.frameId, parameters: answer }
          : answer;
        this.sendData(
          encodeEzspResponse({ sequence: command.sequence, frameId, parameters, legacy: command.legacy }),
        );
      }
    }
  }
}

/** VERSION's answer: protocol version, mesh stack, stack version nibbles. */
export function versionAnswer(version: number, stack = 0x7440): Buffer {
  return Buffer.from([version, 0x02, stack & 0xff, stack >> 8]);
}

export { FrameId };
