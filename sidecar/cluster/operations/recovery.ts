import type { OperationRecord } from "../../types.js";
import { type ClusterContext, nodeOf } from "../context.js";
import { driverOf } from "../coordinators/index.js";
import type { Monitor } from "../monitor.js";
import type { OperationPlan } from "../runner.js";
import { asStepFailure, ONLINE_TIMEOUT_MS, stopAndConfirm, waitOnline } from "./common.js";

export interface RecoveryContext {
  running: string[];
  unreachable: string[];
  actions: string[];
  notes: string[];
}

/**
 * The targets of interrupted takeovers whose zigbee2mqtt was started (the step ran, whatever its
 * end) and whose copy a rollback did not already retire: their coordinators may have run the
 * network with the copy's counters.
 */
function startedTargets(interrupted: OperationRecord[]): string[] {
  const targets = new Set<string>();
  for (const op of interrupted) {
    if (op.kind !== "switchover" && op.kind !== "failover") continue;
    const to = op.params.to;
    if (typeof to !== "string") continue;
    const started = op.steps.some((s) => s.key === "start-target" && !s.rollback);
    const retired = op.steps.some((s) => s.key === "retire-target-copy" && s.status === "succeeded");
    if (started && !retired) targets.add(to);
  }
  return [...targets];
}

/**
 * After the sidecar died in the middle of an operation: bring the cluster to a safe state,
 * exactly one node running zigbee2mqtt (or none, with an alert, when none can be), and say what
 * was done. The old active's dongle holds the network until the point of no return, so starting
 * it again is safe, once a target that was started has its copy retired and the old active counts
 * above it; a target that runs and comes online has the network and is adopted.
 */
export function recoveryPlan(
  cx: ClusterContext,
  monitor: Monitor,
  interrupted: OperationRecord[],
  trigger: string,
): OperationPlan<RecoveryContext> {
  const ctx: RecoveryContext = { running: [], unreachable: [], actions: [], notes: [] };
  return {
    kind: "recovery",
    mutating: true,
    trigger,
    reason: `the sidecar stopped during ${interrupted.map((o) => `${o.kind} ${o.id} (step "${o.error?.step ?? "?"}")`).join(", ")}`,
    params: { interrupted: interrupted.map((o) => o.id) },
    ctx,
    steps: [
      {
        key: "look",
        name: "look at every node",
        timeoutMs: 60_000,
        run: async () => {
          const statuses = await monitor.probeAll(false);
          for (const s of statuses) {
            if (s.zigbee2mqtt_running) ctx.running.push(s.id);
            if (!monitor.lastProbe(s.id)?.reachable) ctx.unreachable.push(s.id);
          }
          return `running: ${ctx.running.join(", ") || "none"}; unreachable: ${ctx.unreachable.join(", ") || "none"}`;
        },
      },
      {
        key: "leave-one-running",
        name: "leave exactly one node running",
        timeoutMs: 900_000,
        run: async (io) => {
          try {
            return await leaveOneRunning(cx, ctx, interrupted, io.signal);
          } catch (error) {
            // Whatever runs now, someone must look: never leave it to a quiet failed record.
            cx.alerts.raise(
              "recovery",
              "critical",
              `recovery after a sidecar crash failed: ${(error as Error).message}; zigbee2mqtt ran on ${ctx.running.join(", ") || "no node"} when it gave up`,
            );
            throw error;
          }
        },
      },
    ],
    result: (c) => ({
      actions: c.actions,
      running: c.running,
      unreachable: c.unreachable,
      ...(c.notes.length ? { notes: c.notes } : {}),
    }),
  };
}

async function leaveOneRunning(
  cx: ClusterContext,
  ctx: RecoveryContext,
  interrupted: OperationRecord[],
  signal: AbortSignal,
): Promise<string> {
  const state = cx.state.get();
  const bridge = cx.watcher.status();
  if (ctx.running.length > 1) {
    const keep =
      (state.active && ctx.running.includes(state.active) && state.active) ||
      (bridge.publishing_node && ctx.running.includes(bridge.publishing_node) && bridge.publishing_node) ||
      (ctx.running[0] as string);
    for (const id of ctx.running.filter((r) => r !== keep)) {
      try {
        await stopAndConfirm(cx, id);
      } catch (error) {
        throw asStepFailure(error);
      }
      ctx.actions.push(`stopped zigbee2mqtt on ${id}: ${keep} keeps the network`);
    }
    ctx.running = [keep];
  }
  if (ctx.running.length === 1) {
    const only = ctx.running[0] as string;
    if (only === state.active) {
      ctx.actions.push(`${only} runs zigbee2mqtt and stays active`);
      return ctx.actions.join("; ");
    }
    // A takeover's target runs: it has the network once it is online. One that exits or
    // never gets there is stopped, and the recorded active takes the network back.
    let online: string | undefined;
    try {
      online = await waitOnline(cx, only, {}, ONLINE_TIMEOUT_MS, signal);
    } catch (error) {
      if (signal.aborted) throw error;
      try {
        await stopAndConfirm(cx, only);
      } catch (stopError) {
        throw asStepFailure(stopError);
      }
      ctx.actions.push(
        `${only} ran zigbee2mqtt but did not come online (${(error as Error).message}): stopped`,
      );
      ctx.running = [];
    }
    if (online) {
      cx.state.update((s) => {
        s.active = only;
        delete s.fenced[only];
      });
      ctx.actions.push(
        `${only} already runs the network: it is now the active node (was ${state.active ?? "none"})`,
      );
      return ctx.actions.join("; ");
    }
  }
  const active = state.active;
  // A started target out of reach may run the network (with the copy's higher counters): the old
  // active must not come back beside it. It is recorded as the active, which the failover policy
  // then handles as an active that is down (restart when it answers, else fence and fail over).
  const lost = startedTargets(interrupted).find((t) => t !== active && ctx.unreachable.includes(t));
  if (lost) {
    cx.state.update((s) => {
      s.active = lost;
    });
    const message = `${lost}'s zigbee2mqtt was started by the interrupted operation and ${lost} is unreachable: it may run the network, so ${active ?? "no other node"} stays stopped and ${lost} is recorded as the active node`;
    cx.alerts.raise("recovery", "critical", message);
    ctx.actions.push(message);
    return message;
  }
  if (active && !ctx.unreachable.includes(active)) {
    // A target whose zigbee2mqtt was started may have run the network with the copy's (higher)
    // counters, and its chip keeps running it: retire the copy, then count on above it.
    const copies = startedTargets(interrupted).filter((t) => t !== active);
    if (copies.length > 0) {
      let above: number | undefined = 0;
      for (const target of copies) {
        const reached = await driverOf(cx, target).retire(cx, target, signal, ctx.notes);
        above = reached === undefined || above === undefined ? undefined : Math.max(above, reached);
        ctx.actions.push(
          `retired the copy of the network on ${target} (its counter reached ${reached ?? "an unknown value"})`,
        );
      }
      const raised = await driverOf(cx, active).raiseCounter(cx, active, above, signal, ctx.notes);
      ctx.actions.push(`raised the frame counter on ${active}: ${raised}`);
    }
    try {
      await nodeOf(cx, active).startService();
    } catch (error) {
      throw asStepFailure(error);
    }
    const detail = await waitOnline(cx, active, {}, ONLINE_TIMEOUT_MS, signal);
    ctx.actions.push(`no node was running: started ${active} again on its own dongle (${detail})`);
    return ctx.actions.join("; ");
  }
  const message = active
    ? `no node runs zigbee2mqtt and the active node ${active} is unreachable: a failover is needed`
    : "no node runs zigbee2mqtt and no active node is known";
  cx.alerts.raise("recovery", "critical", message);
  ctx.actions.push(message);
  return message;
}
