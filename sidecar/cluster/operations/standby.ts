/**
 * A standby's coordinator, ready before it is needed ("armed"): its dongle holds the freshest
 * coordinator state the controller has, with the network frame counter already above what the
 * active can have sent by `failover.arm_horizon` from now, written and read back while the active
 * runs. A failover onto an armed standby then writes and reads nothing in the outage; without it
 * the outage holds a reset, a full write and a full read-back (a minute on a real CC2652 at
 * 115200 baud).
 *
 * Relies on: a dongle written by nvram_write or network_restore ends reset and runs no network
 * until zigbee2mqtt starts it (docs/failover.md, parking); every coordinator tool that writes a
 * dongle goes through withTool, which forgets what the node was armed with before it writes.
 */
import type { ClusterContext } from "../context.js";
import { driverOf } from "../coordinators/index.js";
import type { Step } from "../runner.js";
import { toolStepTimeout } from "./common.js";

/**
 * Arming is never worth delaying a takeover for: it runs inside a sync, which holds the
 * operation lock for up to a minute on a real link. A takeover that is wanted preempts it (the
 * running tool is ended through its abort, the dongle is simply not armed), and no arming starts
 * again until the next sync.
 */
export class ArmingPreemption {
  #controller = new AbortController();

  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  preempt(reason: string): void {
    if (!this.#controller.signal.aborted) this.#controller.abort(new Error(reason));
  }

  /** A new sync begins: it may arm again. */
  reset(): void {
    if (this.#controller.signal.aborted) this.#controller = new AbortController();
  }
}

/** A sync's step: arm one standby after its data dir was staged. */
export function armStep(cx: ClusterContext, node: string, notes: string[]): Step<unknown> {
  return {
    key: `arm:${node}`,
    name: `arm coordinator on ${node}`,
    // A read (when it may hold another network), a reset, a write and the read back.
    timeoutMs: toolStepTimeout(cx, node, 4),
    run: async ({ signal, op }) => {
      const preempted = cx.arming.signal;
      if (preempted.aborted) return `not armed: ${(preempted.reason as Error).message}`;
      try {
        return await driverOf(cx, node).arm(cx, node, AbortSignal.any([signal, preempted]), op.id, notes);
      } catch (error) {
        // Only the preemption is swallowed: a step timeout or a shutdown stays a failure.
        if (!preempted.aborted || signal.aborted) throw error;
        return `not armed: ${(preempted.reason as Error).message} (its tool was ended; the next sync arms it)`;
      }
    },
  };
}
