/**
 * Putting the old active back when a takeover fails before the target is confirmed online, and
 * what to do when the target was started and can no longer be reached.
 */
import { type ClusterContext, nodeOf } from "../context.js";
import { driverOf } from "../coordinators/index.js";
import { type Step, StepFailure } from "../runner.js";
import { asStepFailure, ONLINE_TIMEOUT_MS, stopAndConfirm, toolStepTimeout, waitOnline } from "./common.js";
import { stageSnapshot } from "./data-dir.js";
import type { TakeoverContext } from "./takeover-context.js";

/** How long a rollback waits for a target that was never started to confirm it is stopped. */
const STOP_PRECAUTION_MS = 10_000;

/**
 * Puts the old active back when a takeover fails before the target is confirmed online. Undoes
 * only what the operation did: a takeover that failed before it stopped the old active or touched
 * the target (a failed preflight) has nothing to undo, so it ends "failed" and the running active
 * is left alone. `canRestartFrom`: the old active was stopped by this operation over SSH.
 */
export function rollbackSteps(
  cx: ClusterContext,
  ctx: TakeoverContext,
  canRestartFrom: boolean,
): Step<TakeoverContext>[] {
  if (!canRestartFrom && !ctx.touchedTo && !ctx.startedTo) return [];
  const steps: Step<TakeoverContext>[] = [
    {
      key: "rollback-stop-target",
      name: `stop ${ctx.to}`,
      timeoutMs: 90_000,
      run: async ({ signal, op }) => {
        // Never started there and known unreachable: no need to wait for SSH to give up again.
        if (!ctx.startedTo && cx.unreachable(ctx.to))
          return `${ctx.to} is unreachable; zigbee2mqtt was never started there`;
        try {
          // Never started there: the stop is only a precaution, and the old active waits for it
          // (an unreachable node would hold it for SSH's three connection attempts, ~30 s).
          const bound = ctx.startedTo
            ? signal
            : AbortSignal.any([signal, AbortSignal.timeout(STOP_PRECAUTION_MS)]);
          return await stopAndConfirm(cx, ctx.to, bound);
        } catch (error) {
          // Never started there: it cannot be running, the old active may come back.
          if (!ctx.startedTo)
            return `${ctx.to} did not answer (${(error as Error).message}); zigbee2mqtt was never started there`;
          // Maybe running and out of reach: starting the old active too could make two coordinators.
          throw await presumeTargetActive(cx, ctx, error, signal, op.id);
        }
      },
    },
  ];
  if (ctx.startedTo) steps.push(retireCopyStep(cx, ctx));
  if (ctx.from && canRestartFrom) {
    const from = ctx.from;
    if (ctx.startedTo) steps.push(raiseFromCounterStep(cx, ctx, from));
    steps.push(
      {
        key: "restart-source",
        name: `start ${from} again`,
        timeoutMs: 90_000,
        run: async ({ signal }) => {
          try {
            await nodeOf(cx, from).startService(signal);
          } catch (error) {
            throw asStepFailure(error);
          }
          return ctx.startedTo
            ? "service started, frame counter above the target's"
            : "service started on its untouched network";
        },
      },
      {
        key: "wait-source-online",
        name: `wait for ${from} online`,
        timeoutMs: ONLINE_TIMEOUT_MS + 5_000,
        run: async ({ signal }) => {
          const detail = await waitOnline(cx, from, ctx.expected, ONLINE_TIMEOUT_MS, signal);
          cx.state.update((s) => {
            delete s.fenced[from];
          });
          return detail;
        },
      },
    );
  }
  return steps;
}

/**
 * The target was started and cannot be reached to stop it: its coordinator may run the network
 * (with the copy's higher counters). The old active stays stopped and parked, and the target is
 * recorded as the active node, so that nothing restarts the old one in place beside it: the
 * failover policy handles it as any active that is down (fence it, then a failover, whose restore
 * goes above the counter written onto it). The old active gets a staged copy of its own final
 * data, which makes it a ready standby for that failover without going back to older data.
 */
async function presumeTargetActive(
  cx: ClusterContext,
  ctx: TakeoverContext,
  error: unknown,
  signal: AbortSignal,
  operationId: string,
): Promise<StepFailure> {
  const from = ctx.from;
  let staged = "";
  if (from && ctx.dataSnapshot && !cx.unreachable(from)) {
    try {
      await stageSnapshot(cx, from, ctx.dataSnapshot, operationId);
      staged = `; ${from} has its own final data (${ctx.dataSnapshot.id}) staged`;
    } catch (stageError) {
      if (signal.aborted) throw stageError;
      ctx.notes.push(`could not stage ${ctx.dataSnapshot.id} on ${from}: ${(stageError as Error).message}`);
    }
  }
  cx.state.update((s) => {
    s.active = ctx.to;
  });
  const cause = asStepFailure(error);
  return new StepFailure(
    `${ctx.to} was started and cannot be reached to stop it (${cause.message}): it may run the network, so ${from ?? "no other node"} stays stopped and ${ctx.to} is recorded as the active node${staged}`,
    cause instanceof StepFailure ? cause.output : undefined,
  );
}

/**
 * Once the target's zigbee2mqtt was started, its coordinator may have started the network and sent
 * frames with the copy's counters, which are above the old active's: the copy is retired.
 */
function retireCopyStep(cx: ClusterContext, ctx: TakeoverContext): Step<TakeoverContext> {
  return {
    key: "retire-target-copy",
    name: `retire the copy on ${ctx.to}`,
    timeoutMs: toolStepTimeout(cx, ctx.to, 2),
    run: async ({ signal }) => {
      const reached = await driverOf(cx, ctx.to).retire(cx, ctx.to, signal, ctx.notes);
      ctx.targetReached = Math.max(reached ?? 0, ctx.frameCounter?.restored ?? 0);
      return `${ctx.to}'s coordinator ${reached === undefined ? "(counter unknown)" : `had counted to ${reached}`}; its NVRAM is reset, it runs no network`;
    },
  };
}

/** The old active resumes above anything the retired copy can have sent. */
function raiseFromCounterStep(cx: ClusterContext, ctx: TakeoverContext, from: string): Step<TakeoverContext> {
  return {
    key: "raise-source-counter",
    name: `raise the frame counter on ${from}`,
    timeoutMs: toolStepTimeout(cx, from, 2),
    run: async ({ signal }) => {
      const above = ctx.targetReached ?? ctx.frameCounter?.restored;
      const detail = await driverOf(cx, from).raiseCounter(cx, from, above, signal, ctx.notes);
      return `${detail}, above the ${above ?? "(unknown)"} ${ctx.to} can have used`;
    },
  };
}
