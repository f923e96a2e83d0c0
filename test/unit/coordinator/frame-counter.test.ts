import { describe, expect, it } from "vitest";
import { type CounterFact, resumeCounter } from "../../../sidecar/coordinator/frame-counter.js";

const now = Date.parse("2026-12-04T12:00:00Z");
const ago = (seconds: number) => now - seconds * 1000;
const reading = (counter: number, at: number, source = "snapshot"): CounterFact => ({
  kind: "reading",
  source,
  counter,
  at,
});
const issue = (counter: number, at: number): CounterFact => ({
  kind: "issue",
  source: "written",
  counter,
  at,
});

describe("where a restore resumes the frame counter", () => {
  it("a reading taken now: its counter + the increment", () => {
    expect(resumeCounter([reading(1000, now)], now, 10, 2500)).toMatchObject({ target: 3500, allowance: 0 });
  });

  it("an old reading: + rate × its age, which can beat a newer reading with a lower counter", () => {
    const plan = resumeCounter([reading(5000, ago(600), "backup"), reading(6000, ago(30))], now, 10, 2500);
    // 5000 + 6000 (10 frames/s for 10 min) beats 6000 + 300.
    expect(plan).toMatchObject({ target: 5000 + 6000 + 2500, allowance: 6000 });
    expect(plan?.from.source).toBe("backup");
  });

  it("a counter written onto a dongle after the last reading counts, with its own age", () => {
    const plan = resumeCounter([reading(1000, ago(120)), issue(3500, ago(60))], now, 5, 2500);
    expect(plan).toMatchObject({ target: 3500 + 300 + 2500, allowance: 300 });
    expect(plan?.from.kind).toBe("issue");
  });

  it("a reading after the issue supersedes it (the issued coordinator is the one read since)", () => {
    const plan = resumeCounter([issue(900_000, ago(86_400)), reading(1_000_000, ago(10))], now, 10, 2500);
    expect(plan).toMatchObject({ target: 1_000_000 + 100 + 2500 });
  });

  it("rate 0: the counters as they are, + the increment; no facts: no plan", () => {
    expect(resumeCounter([reading(10, ago(1e6))], now, 0, 2500)?.target).toBe(2510);
    expect(resumeCounter([], now, 10, 2500)).toBeUndefined();
  });

  it("a reading of unknown time gets no allowance and does not supersede an issue", () => {
    const plan = resumeCounter([reading(100, Number.NaN), issue(50, ago(10))], now, 10, 0);
    expect(plan).toMatchObject({ target: 150, from: { kind: "issue" } });
  });
});
