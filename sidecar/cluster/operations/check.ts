import { checkNode, hasErrors } from "../../node/node-checks.js";
import type { NodeCheck } from "../../types.js";
import { type ClusterContext, nodeOf } from "../context.js";
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
      timeoutMs: 180_000,
      continueOnFailure: true,
      run: async () => {
        // The probe updates the node's health; the doctor's checks (the same as `z2m-ha doctor`)
        // say, for every failure, what to do about it.
        const status = await monitor.probe(id, true);
        const results = await checkNode(nodeOf(cx, id), {
          clockSkewWarnMs: cx.config.monitor.clock_skew_warn,
        });
        const checks: NodeCheck[] = results.map((r) => ({
          name: r.id,
          ok: r.ok,
          severity: r.severity,
          detail: r.detail,
          ...(r.fix ? { fix: r.fix } : {}),
        }));
        const errors = results.filter((r) => !r.ok && r.severity === "error");
        ctx.results[id] = { ok: errors.length === 0, health: status.health, checks };
        const summary = results
          .map(
            (r) =>
              `${r.ok ? "ok" : r.severity === "error" ? "FAIL" : "warn"} ${r.id}${r.ok ? "" : ` (${r.detail})`}`,
          )
          .join("; ");
        if (hasErrors(results))
          throw new StepFailure(
            `${errors.map((r) => r.id).join(", ")} failed`,
            errors.map((r) => `${r.id}: ${r.detail}${r.fix ? `\n  fix: ${r.fix}` : ""}`).join("\n"),
          );
        return summary;
      },
    })),
    result: (c) => ({ nodes: c.results }),
  };
}
