import type { OperationRecord } from "../../types.js";
import { type ClusterContext, nodeOf } from "../context.js";
import type { Monitor } from "../monitor.js";
import type { OperationPlan } from "../runner.js";
import { asStepFailure, stopAndConfirm, waitOnline } from "./common.js";

export interface RecoveryContext {
  running: string[];
  unreachable: string[];
  actions: string[];
}

/**
 * After the sidecar died in the middle of an operation: bring the cluster to a safe state,
 * exactly one node running zigbee2mqtt (or none, with an alert, when none can be), and say what
 * was done. The old active's dongle is never written before the point of no return, so starting
 * it again is always safe; a target that already runs has the network and is adopted.
 */
export function recoveryPlan(
  cx: ClusterContext,
  monitor: Monitor,
  interrupted: OperationRecord[],
  trigger: string,
): OperationPlan<RecoveryContext> {
  const ctx: RecoveryContext = { running: [], unreachable: [], actions: [] };
  return {
    kind: "recovery",
    mutating: true,
    trigger,
    reason: `the sidecar stopped during ${interrupted.map((o) => `${o.kind} ${o.id} (step "${o.error?.step ?? "?"}")`).join(", ")}`,
    params: { interrupted: interrupted.map((o) => o.id) },
    ctx,
    steps: [
      {
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
        name: "leave exactly one node running",
        timeoutMs: 300_000,
        run: async ({ signal }) => {
          const state = cx.state.get();
          const bridge = cx.watcher.status();
          if (ctx.running.length > 1) {
            const keep =
              (state.active && ctx.running.includes(state.active) && state.active) ||
              (bridge.publishing_node &&
                ctx.running.includes(bridge.publishing_node) &&
                bridge.publishing_node) ||
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
            if (only !== state.active) {
              const next = cx.state.update((s) => {
                s.active = only;
                delete s.fenced[only];
              });
              cx.bus.publish({ type: "state.changed", state: next });
              ctx.actions.push(
                `${only} already runs the network: it is now the active node (was ${state.active ?? "none"})`,
              );
            } else {
              ctx.actions.push(`${only} runs zigbee2mqtt and stays active`);
            }
            return ctx.actions.join("; ");
          }
          const active = state.active;
          if (active && !ctx.unreachable.includes(active)) {
            try {
              await nodeOf(cx, active).startService();
            } catch (error) {
              throw asStepFailure(error);
            }
            const detail = await waitOnline(cx, active, {}, 180_000, signal);
            ctx.actions.push(`no node was running: started ${active} again on its own dongle (${detail})`);
            return ctx.actions.join("; ");
          }
          const message = active
            ? `no node runs zigbee2mqtt and the active node ${active} is unreachable: a failover is needed`
            : "no node runs zigbee2mqtt and no active node is known";
          cx.alerts.raise("recovery", "critical", message);
          ctx.actions.push(message);
          return message;
        },
      },
    ],
    result: (c) => ({ actions: c.actions, running: c.running, unreachable: c.unreachable }),
  };
}
