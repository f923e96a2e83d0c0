import { type ClusterContext, nodeOf } from "../context.js";
import type { Monitor } from "../monitor.js";
import type { OperationPlan } from "../runner.js";
import { asStepFailure, waitOnline } from "./common.js";

/** Restarts zigbee2mqtt in place on the active node (the policy's first answer to a crash). */
export function restartPlan(
  cx: ClusterContext,
  monitor: Monitor,
  node: string,
  trigger: string,
  reason: string,
): OperationPlan<Record<string, never>> {
  return {
    kind: "restart",
    mutating: true,
    trigger,
    reason,
    params: { node },
    ctx: {},
    steps: [
      {
        key: "start",
        name: `start ${node}`,
        timeoutMs: 90_000,
        run: async () => {
          try {
            await nodeOf(cx, node).startService();
          } catch (error) {
            throw asStepFailure(error);
          }
          return "service started";
        },
      },
      {
        key: "wait-online",
        name: `wait for ${node} online`,
        timeoutMs: 125_000,
        run: async ({ signal }) => {
          const detail = await waitOnline(cx, node, {}, 120_000, signal);
          await monitor.probe(node, false);
          return detail;
        },
      },
    ],
  };
}
