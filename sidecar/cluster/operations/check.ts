import type { NodeCheck } from "../../types.js";
import type { ClusterContext } from "../context.js";
import type { Monitor } from "../monitor.js";
import { type OperationPlan, StepFailure } from "../runner.js";

export interface CheckContext {
  results: Record<string, { ok: boolean; health: string; checks: NodeCheck[] }>;
}

/** Preflight of every node: ssh, service, port, tools, disk, clock; each node its own step. */
export function checkPlan(
  cx: ClusterContext,
  monitor: Monitor,
  trigger: string,
): OperationPlan<CheckContext> {
  const ctx: CheckContext = { results: {} };
  return {
    kind: "check",
    mutating: false,
    trigger,
    params: { nodes: [...cx.nodes.keys()] },
    ctx,
    steps: [...cx.nodes.keys()].map((id) => ({
      key: `check:${id}`,
      name: `check ${id}`,
      timeoutMs: 120_000,
      continueOnFailure: true,
      run: async () => {
        const status = await monitor.probe(id, true);
        const failed = status.checks.filter((c) => !c.ok);
        ctx.results[id] = { ok: failed.length === 0, health: status.health, checks: status.checks };
        const summary = status.checks
          .map((c) => `${c.ok ? "ok" : "FAIL"} ${c.name}${c.detail ? ` (${c.detail})` : ""}`)
          .join("; ");
        if (failed.length > 0)
          throw new StepFailure(`${failed.map((c) => c.name).join(", ")} failed`, summary);
        return summary;
      },
    })),
    result: (c) => ({ nodes: c.results }),
  };
}
