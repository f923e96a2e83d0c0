import { describe, expect, it } from "vitest";
import { AshDecoder, type AshFrame, encodeAshFrame } from "../../../sidecar/coordinator/ember/ash.js";
import { ManualClock } from "../../lab/simulator/link.js";
import { AshNcp } from "../../lab/simulator-ember/ash-ncp.js";

/** An AshNcp whose output is decoded back into frames, and which answers every DATA with one response. */
function harness(options: { respond?: boolean } = {}) {
  const clock = new ManualClock();
  const decoder = new AshDecoder();
  const out: AshFrame[] = [];
  const raw: Buffer[] = [];
  const delivered: string[] = [];
  let resets = 0;
  const ncp: AshNcp = new AshNcp(
    {
      write: (bytes) => {
        raw.push(bytes);
        for (const d of decoder.push(bytes)) if (d.kind === "frame") out.push(d.frame);
      },
      onReset: () => {
        resets++;
      },
      onData: (data) => {
        delivered.push(data.toString("hex"));
        if (options.respond ?? true) ncp.send(Buffer.concat([Buffer.from([0xee]), data]));
      },
    },
    clock,
  );
  const send = (frame: AshFrame) => ncp.receive(encodeAshFrame(frame));
  const data = (frmNum: number, ackNum: number, payload: string, reTx = false) =>
    send({ kind: "data", frmNum, ackNum, reTx, data: Buffer.from(payload, "hex") });
  const settle = () => new Promise<void>((r) => queueMicrotask(r));
  return { clock, ncp, out, raw, delivered, send, data, settle, resets: () => resets };
}

describe("ASH on the NCP side", () => {
  it("answers RST by asking the device to reset, and announces itself with CANCEL + RSTACK(2, software)", () => {
    const h = harness();
    h.send({ kind: "rst" });
    expect(h.resets()).toBe(1);
    h.ncp.reset(0x0b);
    expect(h.raw.at(-1)!.toString("hex")).toBe("1ac1020b0a527e");
  });

  it("delivers in-sequence DATA once and piggybacks the acknowledgement on the response", async () => {
    const h = harness();
    h.data(0, 0, "000000");
    await h.settle();
    h.data(1, 1, "010000");
    await h.settle();
    expect(h.delivered).toEqual(["000000", "010000"]);
    expect(h.out).toEqual([
      { kind: "data", frmNum: 0, ackNum: 1, reTx: false, data: Buffer.from("ee000000", "hex") },
      { kind: "data", frmNum: 1, ackNum: 2, reTx: false, data: Buffer.from("ee010000", "hex") },
    ]);
  });

  it("sends a bare ACK when nothing is there to carry it", async () => {
    const h = harness({ respond: false });
    h.data(0, 0, "000000");
    await h.settle();
    expect(h.out).toEqual([{ kind: "ack", ackNum: 1, notReady: false }]);
  });

  it("counts frame numbers modulo 8", async () => {
    const h = harness();
    for (let i = 0; i < 10; i++) {
      h.data(i & 7, i & 7, `0${i}0000`);
      await h.settle();
    }
    expect(h.delivered).toHaveLength(10);
    expect(h.out.map((f) => (f.kind === "data" ? `${f.frmNum}/${f.ackNum}` : f.kind))).toEqual([
      "0/1",
      "1/2",
      "2/3",
      "3/4",
      "4/5",
      "5/6",
      "6/7",
      "7/0",
      "0/1",
      "1/2",
    ]);
  });

  it("acknowledges a retransmitted duplicate again without delivering it twice", async () => {
    const h = harness();
    h.data(0, 0, "000000");
    await h.settle();
    h.data(0, 0, "000000", true);
    await h.settle();
    expect(h.delivered).toEqual(["000000"]);
    expect(h.out.at(-1)).toEqual({ kind: "ack", ackNum: 1, notReady: false });
  });

  it("NAKs the first out-of-sequence frame only (reject condition) until the expected one arrives", async () => {
    const h = harness();
    h.data(1, 0, "010000");
    h.data(2, 0, "020000");
    await h.settle();
    expect(h.out).toEqual([{ kind: "nak", ackNum: 0, notReady: false }]);
    expect(h.ncp.stats.out_of_sequence_in).toBe(2);
    h.data(0, 0, "000000", true);
    await h.settle();
    expect(h.delivered).toEqual(["000000"]);
    h.data(5, 0, "050000");
    await h.settle();
    expect(h.out.filter((f) => f.kind === "nak")).toHaveLength(2);
  });

  it("NAKs a DATA frame with a bad CRC", () => {
    const h = harness();
    const wire = encodeAshFrame({
      kind: "data",
      frmNum: 0,
      ackNum: 0,
      reTx: false,
      data: Buffer.from("000000", "hex"),
    });
    wire[wire.length - 2] = wire[wire.length - 2]! ^ 0x01;
    h.ncp.receive(wire);
    expect(h.out).toEqual([{ kind: "nak", ackNum: 0, notReady: false }]);
    expect(h.ncp.stats.bad_frames_in).toBe(1);
  });

  it("retransmits every unacknowledged frame with the retransmit flag when the host NAKs", async () => {
    const h = harness({ respond: false });
    h.ncp.send(Buffer.from("aa0000", "hex"));
    h.ncp.send(Buffer.from("bb0000", "hex"));
    await h.settle();
    h.send({ kind: "nak", ackNum: 0, notReady: false });
    expect(h.out.slice(2)).toEqual([
      { kind: "data", frmNum: 0, ackNum: 0, reTx: true, data: Buffer.from("aa0000", "hex") },
      { kind: "data", frmNum: 1, ackNum: 0, reTx: true, data: Buffer.from("bb0000", "hex") },
    ]);
    // an ACK of the first leaves only the second to resend
    h.send({ kind: "nak", ackNum: 1, notReady: false });
    expect(h.out.slice(4)).toEqual([
      { kind: "data", frmNum: 1, ackNum: 0, reTx: true, data: Buffer.from("bb0000", "hex") },
    ]);
  });

  it("retransmits on acknowledgement timeout, then enters FAILED and answers everything but RST with ERROR", async () => {
    const h = harness({ respond: false });
    h.ncp.send(Buffer.from("aa0000", "hex"));
    await h.settle();
    h.clock.advance(800);
    expect(h.out.at(-1)).toMatchObject({ kind: "data", frmNum: 0, reTx: true });
    h.clock.advance(1600);
    h.clock.advance(2400);
    h.clock.advance(2400);
    expect(h.ncp.isFailed).toBe(true);
    expect(h.out.at(-1)).toEqual({ kind: "error", version: 2, code: 0x51 });
    h.data(0, 0, "000000");
    expect(h.out.at(-1)).toEqual({ kind: "error", version: 2, code: 0x51 });
    expect(h.delivered).toEqual([]);
    h.send({ kind: "rst" });
    expect(h.resets()).toBe(1);
    h.ncp.reset(0x0b);
    expect(h.ncp.isFailed).toBe(false);
  });

  it("stops the acknowledgement timer once the host acknowledges", async () => {
    const h = harness({ respond: false });
    h.ncp.send(Buffer.from("aa0000", "hex"));
    await h.settle();
    h.send({ kind: "ack", ackNum: 1, notReady: false });
    h.clock.advance(10_000);
    expect(h.out).toHaveLength(1);
  });

  it("holds callbacks, not responses, while the host says it is not ready", async () => {
    const h = harness();
    h.send({ kind: "ack", ackNum: 0, notReady: true });
    h.ncp.send(Buffer.from("cc0000", "hex"), true);
    h.data(0, 0, "000000");
    await h.settle();
    expect(h.out.map((f) => f.kind === "data" && f.data.toString("hex"))).toEqual(["ee000000"]);
    h.send({ kind: "ack", ackNum: 1, notReady: false });
    await h.settle();
    expect(h.out.map((f) => f.kind === "data" && f.data.toString("hex"))).toEqual(["ee000000", "cc0000"]);
  });

  it("sends at most five frames before an acknowledgement", async () => {
    const h = harness({ respond: false });
    for (let i = 0; i < 7; i++) h.ncp.send(Buffer.from([i, 0, 0]), true);
    await h.settle();
    expect(h.out).toHaveLength(5);
    h.send({ kind: "ack", ackNum: 3, notReady: false });
    await h.settle();
    expect(h.out).toHaveLength(7);
  });
});
