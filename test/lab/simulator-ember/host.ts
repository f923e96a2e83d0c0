/**
 * A minimal EZSP host: the host side of ASH (RST, DATA with frame numbers, an ACK for every DATA
 * frame received) and EZSP commands matched to their responses by sequence number. For tests and
 * for the lab's controller experiments (park and wipe an NCP from the host side), not a full host:
 * no retransmission (the simulated line does not lose bytes), one command at a time.
 */
import { connect, type Socket } from "node:net";
import {
  AshByte,
  AshDecoder,
  type AshFrame,
  encodeAshFrame,
} from "../../../sidecar/coordinator/ember/ash.js";
import { FrameId } from "../../../sidecar/coordinator/ember/constants.js";
import {
  ByteReader,
  decodeEzspCommand,
  encodeEzspCommand,
} from "../../../sidecar/coordinator/ember/ezsp-frame.js";

export interface EzspFrameIn {
  sequence: number;
  frameId: number;
  callback: boolean;
  parameters: Buffer;
}

type Waiter = { match: (f: EzspFrameIn) => boolean; resolve: (f: EzspFrameIn) => void };

export class EzspTestHost {
  private readonly decoder = new AshDecoder();
  private frmTx = 0;
  private frmRx = 0;
  private sequence = 0;
  private connected = false;
  private rstackWaiter: ((code: number) => void) | undefined;
  private waiters: Waiter[] = [];
  /** Every EZSP frame received (responses and callbacks), in order. */
  readonly received: EzspFrameIn[] = [];
  /** Every ASH frame received, in order. */
  readonly ashFrames: AshFrame[] = [];
  /** EZSP version agreed by `start`. */
  version = 0;

  constructor(private readonly write: (bytes: Buffer) => void) {}

  /** Connect to a simulator's TCP port (tcp://host:port). */
  static async connectTcp(url: string): Promise<{ host: EzspTestHost; socket: Socket }> {
    const m = /^tcp:\/\/(.+):(\d+)$/.exec(url);
    if (!m) throw new Error(`not a tcp:// URL: ${url}`);
    const socket = connect(Number(m[2]), m[1]!);
    await new Promise<void>((resolve, reject) => {
      socket.once("connect", () => resolve());
      socket.once("error", reject);
    });
    socket.setNoDelay(true);
    const host = new EzspTestHost((bytes) => socket.write(bytes));
    socket.on("data", (chunk: Buffer) => host.receive(chunk));
    socket.on("error", () => {});
    return { host, socket };
  }

  receive(chunk: Buffer): void {
    for (const decoded of this.decoder.push(chunk)) {
      if (decoded.kind !== "frame") continue;
      const frame = decoded.frame;
      this.ashFrames.push(frame);
      if (frame.kind === "rstack") {
        this.connected = true;
        this.frmTx = 0;
        this.frmRx = 0;
        this.rstackWaiter?.(frame.code);
        this.rstackWaiter = undefined;
      } else if (frame.kind === "data" && this.connected) {
        if (frame.frmNum !== this.frmRx) continue;
        this.frmRx = (this.frmRx + 1) & 7;
        this.write(encodeAshFrame({ kind: "ack", ackNum: this.frmRx, notReady: false }));
        const command = decodeEzspCommand(frame.data);
        const incoming: EzspFrameIn = {
          sequence: command.sequence,
          frameId: command.frameId,
          callback: (command.frameControl & 0x10) !== 0,
          parameters: command.parameters,
        };
        this.received.push(incoming);
        const index = this.waiters.findIndex((w) => w.match(incoming));
        if (index >= 0) this.waiters.splice(index, 1)[0]!.resolve(incoming);
      }
    }
  }

  /** CANCEL + RST, as herdsman starts; resolves with the RSTACK's reset code. */
  reset(timeoutMs = 5000): Promise<number> {
    this.connected = false;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no RSTACK within ${timeoutMs} ms`)), timeoutMs);
      this.rstackWaiter = (code) => {
        clearTimeout(timer);
        resolve(code);
      };
      this.write(Buffer.concat([Buffer.from([AshByte.CANCEL]), encodeAshFrame({ kind: "rst" })]));
    });
  }

  /** Send one EZSP command and wait for its response (same sequence, not a callback). */
  command(
    frameId: number,
    parameters: Buffer = Buffer.alloc(0),
    options: { legacy?: boolean; timeoutMs?: number } = {},
  ): Promise<EzspFrameIn> {
    if (!this.connected) throw new Error("not connected: reset first");
    const sequence = this.sequence;
    this.sequence = (this.sequence + 1) & 0xff;
    const data = encodeEzspCommand({ sequence, frameId, parameters, legacy: options.legacy });
    const promise = this.waitFor(
      (f) => !f.callback && f.sequence === sequence,
      options.timeoutMs ?? 5000,
      `response to 0x${frameId.toString(16)}`,
    );
    this.write(encodeAshFrame({ kind: "data", frmNum: this.frmTx, ackNum: this.frmRx, reTx: false, data }));
    this.frmTx = (this.frmTx + 1) & 7;
    return promise;
  }

  /** Wait for a callback with this frame id (one already received counts). */
  callback(frameId: number, timeoutMs = 5000, since = 0): Promise<EzspFrameIn> {
    const seen = this.received.slice(since).find((f) => f.callback && f.frameId === frameId);
    if (seen) return Promise.resolve(seen);
    return this.waitFor(
      (f) => f.callback && f.frameId === frameId,
      timeoutMs,
      `callback 0x${frameId.toString(16)}`,
    );
  }

  private waitFor(match: (f: EzspFrameIn) => boolean, timeoutMs: number, what: string): Promise<EzspFrameIn> {
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        match,
        resolve: (f) => {
          clearTimeout(timer);
          resolve(f);
        },
      };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(new Error(`no ${what} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.push(waiter);
    });
  }

  /** RST, then VERSION as herdsman negotiates it (ask for 19, accept what the NCP speaks). */
  async start(): Promise<number> {
    await this.reset();
    const first = await this.command(FrameId.VERSION, Buffer.from([0x13]), { legacy: true });
    const ncpVersion = first.parameters[0]!;
    if (ncpVersion !== 0x13) await this.command(FrameId.VERSION, Buffer.from([ncpVersion]));
    this.version = ncpVersion;
    return ncpVersion;
  }

  /** Commands whose response is just an sl_status_t. */
  async statusOf(frameId: number, parameters?: Buffer): Promise<number> {
    const response = await this.command(frameId, parameters);
    return new ByteReader(response.parameters).u32();
  }
}
