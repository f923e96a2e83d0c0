import { type ClusterContext, nodeOf } from "../context.js";
import { PreconditionError } from "../errors.js";
import type { Monitor } from "../monitor.js";

/** The standbys that could take over now, best first (priority, then id). */
export function readyStandbys(cx: ClusterContext, monitor: Monitor, exclude: string | null): string[] {
  return [...cx.nodes.values()]
    .filter((n) => n.id !== exclude && monitor.readiness(n.id).ready)
    .sort((a, b) => a.config.priority - b.config.priority || (a.id < b.id ? -1 : 1))
    .map((n) => n.id);
}

export function chooseTarget(
  cx: ClusterContext,
  monitor: Monitor,
  active: string | null,
  target?: string,
): string {
  if (target) {
    nodeOf(cx, target);
    if (target === active) throw new PreconditionError(`${target} is already the active node`);
    return target;
  }
  const ready = readyStandbys(cx, monitor, active);
  if (ready[0]) return ready[0];
  const reasons = [...cx.nodes.keys()]
    .filter((id) => id !== active)
    .map((id) => `${id}: ${monitor.readiness(id).reasons.join(", ")}`);
  throw new PreconditionError(
    `no standby is ready to take over (${reasons.join("; ")}); name a target to override`,
    {
      standbys: reasons,
    },
  );
}
