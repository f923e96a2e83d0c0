/**
 * Where a restore from stale coordinator state must resume the network frame counter. Each thing
 * the controller knows is a counter at a moment: a reading (an NVRAM snapshot, a
 * coordinator_backup.json) or an issue (a counter the controller itself wrote onto a dongle,
 * which that coordinator counts on from once started). The coordinator that ran the network kept
 * sending since, at most `ratePerSecond` frames a second, so each one bounds what devices can have
 * seen by now: counter + rate × age. The restore goes `increment` above the highest bound.
 */
export interface CounterFact {
  kind: "reading" | "issue";
  /** Where it comes from, for the operation's detail. */
  source: string;
  counter: number;
  /** Milliseconds since the epoch; NaN when unknown (then no allowance: the callers know their times). */
  at: number;
}

export interface CounterPlan {
  /** The counter to resume at. */
  target: number;
  /** The fact that set it. */
  from: CounterFact;
  /** What the age added to that fact's counter. */
  allowance: number;
}

/**
 * An issue is superseded by any later reading: the coordinator that got it is the one whose
 * state later syncs read (it runs the network), so the reading already counts what it sent.
 * An issue no reading came after (the node that got it was lost at once) still counts.
 */
export function resumeCounter(
  facts: CounterFact[],
  now: number,
  ratePerSecond: number,
  increment: number,
): CounterPlan | undefined {
  const time = (f: CounterFact) => (Number.isFinite(f.at) ? f.at : now);
  const newestReading = Math.max(
    Number.NEGATIVE_INFINITY,
    ...facts.filter((f) => f.kind === "reading" && Number.isFinite(f.at)).map((f) => f.at),
  );
  let best: CounterPlan | undefined;
  for (const fact of facts) {
    if (fact.kind === "issue" && time(fact) < newestReading) continue;
    const ageSeconds = Math.max(0, now - time(fact)) / 1000;
    const allowance = Math.ceil(ratePerSecond * ageSeconds);
    const target = fact.counter + allowance + increment;
    if (!best || target > best.target) best = { target, from: fact, allowance };
  }
  return best;
}
