import { describe, expect, it } from "vitest";
import { encodeAshFrame } from "../../../sidecar/coordinator/ember/ash.js";
import { FrameId } from "../../../sidecar/coordinator/ember/constants.js";
import { encodeEzspCommand } from "../../../sidecar/coordinator/ember/ezsp-frame.js";
import { ManualClock, REALISTIC_LINK } from "../../lab/simulator/link.js";
import { AshSerialLink, ashProcessingMs } from "../../lab/simulator-ember/link.js";

const BYTE_MS = 10_000 / 115_200;
const data = (frameId: number, parameters = Buffer.alloc(0)) =>
  encodeAshFrame({
    kind: "data",
    frmNum: 0,
    ackNum: 0,
    reTx: false,
    data: encodeEzspCommand({ sequence: 0, frameId, parameters }),
  });

function line() {
  const clock = new ManualClock();
  const toDevice: { at: number; hex: string }[] = [];
  const toHost: { at: number; hex: string }[] = [];
  const link = new AshSerialLink(
    REALISTIC_LINK,
    {
      toDevice: (b) => toDevice.push({ at: clock.now(), hex: b.toString("hex") }),
      toHost: (b) => toHost.push({ at: clock.now(), hex: b.toString("hex") }),
    },
    clock,
  );
  return { clock, link, toDevice, toHost };
}

describe("the ASH serial line model", () => {
  it("hands an EZSP command to the NCP after its bytes crossed the line plus the NCP latency", () => {
    const l = line();
    const frame = data(FrameId.GET_EUI64);
    l.link.fromHost(frame);
    l.clock.runAll();
    expect(l.toDevice).toHaveLength(1);
    expect(l.toDevice[0]!.at).toBeCloseTo(frame.length * BYTE_MS + REALISTIC_LINK.requestLatencyMs, 6);
  });

  it("adds the flash cost to commands that write tokens (formNetwork, the custom EUI64, ...)", () => {
    expect(ashProcessingMs(data(FrameId.FORM_NETWORK, Buffer.alloc(20)), REALISTIC_LINK)).toBe(
      REALISTIC_LINK.requestLatencyMs + REALISTIC_LINK.nvWriteMs,
    );
    expect(ashProcessingMs(data(FrameId.TOKEN_FACTORY_RESET, Buffer.from([0, 0])), REALISTIC_LINK)).toBe(
      REALISTIC_LINK.requestLatencyMs + REALISTIC_LINK.nvDeleteMs,
    );
    expect(ashProcessingMs(Buffer.from("1ac038bc7e", "hex"), REALISTIC_LINK)).toBe(
      REALISTIC_LINK.requestLatencyMs,
    );
    expect(
      ashProcessingMs(encodeAshFrame({ kind: "ack", ackNum: 1, notReady: false }), REALISTIC_LINK),
    ).toBeUndefined();
  });

  it("passes ACK frames at once (the UART driver handles them), outside the queue of commands", () => {
    const l = line();
    const cmd = data(FrameId.GET_NETWORK_PARAMETERS);
    const ack = encodeAshFrame({ kind: "ack", ackNum: 1, notReady: false });
    l.link.fromHost(Buffer.concat([cmd, ack]));
    l.clock.runAll();
    expect(l.toDevice.map((d) => d.hex)).toEqual([ack.toString("hex"), cmd.toString("hex")]);
    expect(l.toDevice[0]!.at).toBeCloseTo((cmd.length + ack.length) * BYTE_MS, 6);
  });

  it("takes one command at a time, in order, and sends the NCP's bytes back to back", () => {
    const l = line();
    const a = data(FrameId.GET_EUI64);
    const b = data(FrameId.GET_NODE_ID);
    l.link.fromHost(Buffer.concat([a, b]));
    l.clock.runAll();
    const first = a.length * BYTE_MS + REALISTIC_LINK.requestLatencyMs;
    expect(l.toDevice[1]!.at).toBeCloseTo(first + REALISTIC_LINK.requestLatencyMs, 6);
    l.link.fromDevice(Buffer.alloc(10));
    l.link.fromDevice(Buffer.alloc(10));
    const now = l.clock.now();
    l.clock.runAll();
    expect(l.toHost.map((h) => h.at - now)).toEqual(
      [10 * BYTE_MS, 20 * BYTE_MS].map((v) => expect.closeTo(v, 6)),
    );
  });

  it("still delivers what the host wrote before it closed the port", () => {
    const l = line();
    let drained = false;
    l.link.fromHost(Buffer.from("1ac038bc7e", "hex"));
    l.link.drain(() => {
      drained = true;
    });
    l.clock.runAll();
    expect(l.toDevice).toHaveLength(1);
    expect(drained).toBe(true);
  });
});
