/**
 * Takeovers: a planned switchover and an unplanned failover, assembled from the generic steps
 * (takeover-steps.ts), the coordinator driver's steps (coordinators/), fencing and rollback.
 */
import { type ClusterContext, nodeOf } from "../context.js";
import { driverOf } from "../coordinators/index.js";
import { PreconditionError } from "../errors.js";
import type { Monitor } from "../monitor.js";
import type { OperationPlan, Step } from "../runner.js";
import { fenceStep } from "./fencing.js";
import { rollbackSteps } from "./rollback.js";
import {
  newContext,
  planOf,
  resultOf,
  type TakeoverContext,
  type TakeoverRequest,
} from "./takeover-context.js";
import {
  ensureStoppedStep,
  persistStep,
  preflightStep,
  restageStep,
  startStep,
  stopFromStep,
} from "./takeover-steps.js";
import { chooseTarget } from "./target.js";

export type { TakeoverContext, TakeoverRequest } from "./takeover-context.js";
export { readyStandbys } from "./target.js";

/**
 * Planned switchover: the active is reachable and is stopped cleanly, so its coordinator's state
 * can be read exactly and cloned onto the target's dongle (by the target's coordinator driver). Any failure before the target is
 * confirmed online rolls back: target stopped, the old active started again on its untouched dongle.
 */
export function switchoverPlan(
  cx: ClusterContext,
  monitor: Monitor,
  request: TakeoverRequest,
): OperationPlan<TakeoverContext> {
  // An unknown target is the request's fault (404) before anything about the cluster's state.
  if (request.target) nodeOf(cx, request.target);
  const active = cx.state.get().active;
  if (!active) throw new PreconditionError("no active node is known: use failover to bring one up");
  const to = chooseTarget(cx, monitor, active, request.target);
  const ctx = newContext(cx, "switchover", active, to);
  const others = [...cx.nodes.keys()].filter((id) => id !== to);
  const coordinator = driverOf(cx, to).switchoverSteps(cx, ctx);
  return {
    ...planOf(ctx, request),
    steps: [
      preflightStep(cx, ctx),
      ensureStoppedStep(cx, ctx),
      ...coordinator.prepare,
      stopFromStep(cx, ctx),
      ...coordinator.outage,
      ...startStep(cx, ctx),
      persistStep(cx, ctx),
      ...others.map((id) => restageStep(cx, ctx, id)),
    ],
    rollback: (_failed, c) => (c.committed ? [] : rollbackSteps(cx, c, c.stoppedFrom)),
    result: resultOf,
  };
}

/**
 * Unplanned failover: the active is dead or unreachable. Fence it first, then bring the target up
 * from the freshest coordinator state the controller holds, never with a lower frame counter than
 * the network has used (see docs/failover.md for the choice and its trade-offs).
 */
export function failoverPlan(
  cx: ClusterContext,
  monitor: Monitor,
  request: TakeoverRequest,
): OperationPlan<TakeoverContext> {
  const active = cx.state.get().active;
  const to = chooseTarget(cx, monitor, active, request.target);
  const ctx = newContext(cx, "failover", active, to);
  // The network is already down when a failover starts.
  ctx.outage.offlineAt = Date.now();
  // The target is checked before the old active is fenced: a failover that cannot happen must not
  // take down an old active that may still be running the network.
  const steps: Step<TakeoverContext>[] = [preflightStep(cx, ctx)];
  if (active) steps.push(fenceStep(cx, ctx));
  steps.push(
    ensureStoppedStep(cx, ctx),
    ...driverOf(cx, to).failoverSteps(cx, ctx),
    ...startStep(cx, ctx),
    persistStep(cx, ctx),
    ...[...cx.nodes.keys()].filter((id) => id !== to && id !== active).map((id) => restageStep(cx, ctx, id)),
  );
  return {
    ...planOf(ctx, request),
    steps,
    // The old active can only be restarted if it was reachable and stopped by us over SSH.
    rollback: (_failed, c) =>
      c.committed ? [] : rollbackSteps(cx, c, c.stoppedFrom && c.fence?.how === "ssh" && c.fence.ok),
    result: resultOf,
  };
}
