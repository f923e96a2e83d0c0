/** Fencing an old active that is down, so that it can never run its coordinator beside the new one. */
import { type ClusterContext, nodeOf } from "../context.js";
import { driverOf } from "../coordinators/index.js";
import type { Monitor } from "../monitor.js";
import { type OperationPlan, type Step, StepFailure } from "../runner.js";
import { asStepFailure, runFenceCommand, stopAndConfirm, toolStepTimeout, waitOnline } from "./common.js";
import type { TakeoverContext } from "./takeover-context.js";

export function fenceStep(cx: ClusterContext, ctx: TakeoverContext): Step<TakeoverContext> {
  const from = ctx.from as string;
  return {
    key: "fence-source",
    name: `fence ${from}`,
    // The stop, then reading and parking the coordinator when it answers (two tool runs, no retries).
    timeoutMs: 120_000 + toolStepTimeout(cx, from, 2) / 3,
    run: async ({ signal }) => {
      const node = nodeOf(cx, from);
      // Bounded waits on a node that may be dying; the abort also ends the remote command.
      const within = (ms: number) => AbortSignal.any([signal, AbortSignal.timeout(ms)]);
      // Monitoring already had no answer from it: trying SSH again only lengthens the outage.
      const skipSsh = cx.unreachable(from);
      if (skipSsh)
        ctx.notes.push(`${from} is unreachable (monitoring has had no answer from it): not tried over SSH`);
      try {
        if (skipSsh) throw new Error("unreachable");
        // The first answer gets what monitoring gives a probe: a node that cannot answer that
        // quickly is fenced by the fence command instead, and every second here is outage. The
        // wait is cut at that time even while SSH still waits for a session channel (the transport
        // stops the read-only status command itself once the channel opens, if it ever does).
        const state = await answerWithin(
          node.serviceState(within(cx.config.monitor.probe_timeout)),
          cx.config.monitor.probe_timeout,
          `${from} did not answer within ${cx.config.monitor.probe_timeout} ms`,
        );
        if (state !== "stopped") await node.stopService(within(30_000));
        const after = await node.serviceState(within(8_000));
        if (after !== "running") {
          ctx.fence = { how: "ssh", ok: true, detail: `zigbee2mqtt on ${from} stopped over SSH` };
          ctx.stoppedFrom = true;
          ctx.fence.detail += await driverOf(cx, from).captureAndPark(cx, ctx, from, signal);
        }
      } catch (error) {
        if (!skipSsh) ctx.notes.push(`could not stop ${from} over SSH: ${(error as Error).message}`);
      }
      if (!ctx.fence) {
        const command = cx.config.failover.fence_command;
        if (command) {
          const result = await runFenceCommand(command, from, 60_000);
          ctx.fence = {
            how: "command",
            ok: result.code === 0,
            detail: `fence command exited ${result.code}${result.output ? `: ${result.output.trim().slice(-300)}` : ""}`,
          };
        } else {
          ctx.fence = {
            how: "none",
            ok: false,
            detail: `${from} is unreachable and no failover.fence_command is configured; it stays marked fenced and its zigbee2mqtt is stopped as soon as it is seen again`,
          };
        }
      }
      cx.state.update((s) => {
        s.fenced[from] = {
          at: new Date().toISOString(),
          reason: `failover to ${ctx.to}: ${ctx.fence?.detail}`,
        };
      });
      if (!ctx.fence.ok) cx.alerts.raise("fence_failed", "warning", ctx.fence.detail, from);
      return ctx.fence.detail;
    },
  };
}

/**
 * A fenced node is back with zigbee2mqtt stopped: it is a standby like any other once its
 * coordinator runs no network. Parked (a soft reset, NVRAM kept), or found unplugged (no power,
 * nothing on the air), the fence is lifted; otherwise it stays and the guard tries again later.
 */
export function releaseFencedPlan(
  cx: ClusterContext,
  node: string,
  why: string,
): OperationPlan<Record<string, never>> {
  let parked: string | undefined;
  return {
    kind: "fence",
    mutating: true,
    trigger: "guard",
    reason: why,
    params: { node, active: cx.state.get().active },
    ctx: {},
    steps: [
      {
        key: "park-fenced",
        name: `park the coordinator on ${node}`,
        timeoutMs: 300_000,
        continueOnFailure: true,
        run: async ({ signal }) => {
          if ((await nodeOf(cx, node).portPresent()) === false) {
            parked = "its dongle is unplugged: nothing of it is on the air";
            return parked;
          }
          parked = await driverOf(cx, node).park(cx, node, signal);
          return parked;
        },
      },
      {
        key: "lift-fence",
        name: `lift the fence on ${node}`,
        timeoutMs: 10_000,
        run: async () => {
          if (!parked)
            throw new StepFailure(
              `${node}'s coordinator could not be parked and may still run the network: it stays fenced`,
            );
          cx.state.update((s) => {
            delete s.fenced[node];
          });
          cx.alerts.clear("fence_failed", node);
          return `${node} is reachable again, zigbee2mqtt is stopped and ${parked}: it is a standby like any other`;
        },
      },
    ],
  };
}

/** Split-brain guard's action: stop zigbee2mqtt on a node that must not run it. */
export function stopStrayPlan(
  cx: ClusterContext,
  monitor: Monitor,
  node: string,
  why: string,
  trigger = "guard",
): OperationPlan<Record<string, never>> {
  const active = cx.state.get().active;
  return {
    kind: "fence",
    mutating: true,
    trigger,
    reason: why,
    params: { node, active },
    ctx: {},
    steps: [
      {
        key: "stop-stray",
        name: `stop zigbee2mqtt on ${node}`,
        timeoutMs: 90_000,
        run: async () => {
          try {
            return await stopAndConfirm(cx, node);
          } catch (error) {
            throw asStepFailure(error);
          }
        },
      },
      {
        // zigbee2mqtt is stopped, but Z-Stack keeps running a network it started (a fenced old
        // active's, or one a hand-started standby formed or restored): left alone, the chip stays
        // on the air as a second coordinator. A soft reset (parking) makes it hold, NVRAM kept.
        key: "park-stray",
        name: `park the coordinator on ${node}`,
        timeoutMs: 300_000,
        continueOnFailure: true,
        run: ({ signal }) => driverOf(cx, node).park(cx, node, signal),
      },
      {
        key: "look-again",
        name: "look again",
        timeoutMs: 30_000,
        run: async () => {
          const status = await monitor.probe(node, false);
          if (status.zigbee2mqtt_running) throw new StepFailure(`zigbee2mqtt still runs on ${node}`);
          cx.alerts.clear("split_brain", node);
          return `${node}: zigbee2mqtt stopped; ${active ?? "no node"} remains active`;
        },
      },
      {
        // The stray's clean stop left bridge/state "offline" (retained) although the active still
        // runs; restarting the active's zigbee2mqtt republishes its state and info.
        key: "restore-bridge-state",
        name: "restore the active's bridge state",
        timeoutMs: 240_000,
        run: async ({ signal }) => {
          if (!active) return "no active node";
          await new Promise((r) => setTimeout(r, 1000));
          const bridge = cx.watcher.status();
          if (bridge.state === "online" && bridge.publishing_node === active)
            return "bridge state is the active's";
          const state = await nodeOf(cx, active).serviceState();
          if (state !== "running") return `${active} does not run zigbee2mqtt: left to the failover policy`;
          try {
            await stopAndConfirm(cx, active);
            await nodeOf(cx, active).startService();
          } catch (error) {
            throw asStepFailure(error);
          }
          return await waitOnline(cx, active, {}, 180_000, signal);
        },
      },
    ],
  };
}

/** `promise`, or a rejection after `ms` (the promise goes on by itself; its result is dropped). */
function answerWithin<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
  });
  promise.catch(() => undefined);
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}
