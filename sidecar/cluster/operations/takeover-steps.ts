/** The steps every takeover has, whatever its coordinators: preflight, stop, start, persist, restage. */
import { type ClusterContext, nodeOf, stagingOf } from "../context.js";
import { driverOf } from "../coordinators/index.js";
import { type Step, StepFailure } from "../runner.js";
import { asStepFailure, ONLINE_TIMEOUT_MS, stopAndConfirm, waitForBridge, waitOnline } from "./common.js";
import { retention, stageSnapshot } from "./data-dir.js";
import type { TakeoverContext } from "./takeover-context.js";
import { recordIssue } from "./takeover-parts.js";

const OFFLINE_TIMEOUT_MS = 30_000;

export function preflightStep(cx: ClusterContext, ctx: TakeoverContext): Step<TakeoverContext> {
  return {
    key: "preflight",
    name: `preflight ${ctx.to}`,
    timeoutMs: 90_000,
    run: async () => {
      const node = nodeOf(cx, ctx.to);
      const problems: string[] = [];
      await node.run(["true"], { timeoutMs: 10_000 }).catch((error) => {
        throw new StepFailure(`${ctx.to} is not reachable: ${(error as Error).message}`);
      });
      problems.push(...(await driverOf(cx, ctx.to).preflight(cx, ctx.to)));
      const staged = await stagingOf(cx, ctx.to).read();
      if (!staged) problems.push("no staged copy of the data dir (run a sync first)");
      if (problems.length > 0) throw new StepFailure(`${ctx.to} is not ready: ${problems.join("; ")}`);
      return `reachable, tools and ${node.config.coordinator.port} present, staged ${staged?.snapshot_id}`;
    },
  };
}

export function ensureStoppedStep(cx: ClusterContext, ctx: TakeoverContext): Step<TakeoverContext> {
  return {
    key: "ensure-target-stopped",
    name: `make sure ${ctx.to} is stopped`,
    timeoutMs: 90_000,
    run: async ({ signal }) => {
      try {
        return await stopAndConfirm(cx, ctx.to, signal);
      } catch (error) {
        throw asStepFailure(error);
      }
    },
  };
}

export function stopFromStep(cx: ClusterContext, ctx: TakeoverContext): Step<TakeoverContext> {
  const from = ctx.from as string;
  return {
    key: "stop-source",
    name: `stop ${from}`,
    timeoutMs: 120_000,
    run: async ({ signal }) => {
      ctx.stoppedFrom = true;
      ctx.stopSentAt = Date.now();
      let detail: string;
      try {
        detail = await stopAndConfirm(cx, from, signal);
      } catch (error) {
        throw asStepFailure(error);
      }
      const bridge = cx.watcher.status();
      if (!bridge.broker_connected) {
        ctx.notes.push("bridge/state could not be confirmed offline: the controller cannot see the broker");
        return `${detail}; bridge/state unknown (broker unreachable)`;
      }
      await waitForBridge(
        cx,
        (s) => s.state === "offline",
        OFFLINE_TIMEOUT_MS,
        signal,
        () => "bridge/state still online",
      );
      ctx.outage.offlineAt ??= Date.now();
      return `${detail}; bridge/state offline`;
    },
  };
}

export function startStep(cx: ClusterContext, ctx: TakeoverContext): Step<TakeoverContext>[] {
  return [
    {
      key: "start-target",
      name: `start ${ctx.to}`,
      timeoutMs: 90_000,
      run: async ({ signal }) => {
        ctx.startedTo = true;
        // From here B's coordinator may count on from the counter it was given.
        if (ctx.frameCounter && ctx.expected.extended_pan_id)
          recordIssue(cx, ctx.to, ctx.frameCounter.restored, ctx.expected.extended_pan_id);
        try {
          await nodeOf(cx, ctx.to).startService(signal);
        } catch (error) {
          throw asStepFailure(error);
        }
        return "service started";
      },
    },
    {
      key: "wait-target-online",
      name: `wait for ${ctx.to} online`,
      timeoutMs: ONLINE_TIMEOUT_MS + 5_000,
      run: async ({ signal }) => {
        let detail = await waitOnline(cx, ctx.to, ctx.expected, ONLINE_TIMEOUT_MS, signal);
        ctx.outage.onlineAt = Date.now();
        const confirm = driverOf(cx, ctx.to).confirmStarted;
        if (confirm) detail += `; ${await confirm(cx, ctx, signal)}`;
        ctx.committed = true;
        return detail;
      },
    },
  ];
}

export function persistStep(cx: ClusterContext, ctx: TakeoverContext): Step<TakeoverContext> {
  return {
    key: "persist-active",
    name: `persist ${ctx.to} as active`,
    timeoutMs: 10_000,
    run: async ({ op }) => {
      const snapshots = [ctx.dataSnapshot?.id, ctx.nvramSnapshotId].filter((s): s is string => !!s);
      cx.state.update((s) => {
        s.active = ctx.to;
        delete s.fenced[ctx.to];
        // It runs the network now: its counter and tables move on from what it was armed with.
        if (s.armed) delete s.armed[ctx.to];
        s.last_switchover = {
          at: new Date().toISOString(),
          operation_id: op.id,
          from: ctx.from,
          to: ctx.to,
          kind: ctx.kind,
          snapshots,
        };
      });
      return `${ctx.to} is the active node`;
    },
  };
}

/** After a takeover every other reachable node gets a staged copy of the new active's data. */
export function restageStep(cx: ClusterContext, ctx: TakeoverContext, node: string): Step<TakeoverContext> {
  return {
    key: `stage:${node}`,
    name: `stage on ${node}`,
    timeoutMs: 300_000,
    continueOnFailure: true,
    run: async ({ op }) => {
      const snapshot = ctx.dataSnapshot ?? cx.snapshots.latestData();
      if (!snapshot) return "no snapshot to stage";
      // As in a sync: a node monitoring already knows unreachable fails at once, not after SSH gives up.
      if (cx.unreachable(node))
        throw new StepFailure(`${node} is unreachable (monitoring has had no answer from it): not staged`);
      const result = await stageSnapshot(cx, node, snapshot, op.id);
      cx.snapshots.prune(retention(cx));
      return `${result.files_uploaded} files uploaded (${result.bytes_moved} bytes)`;
    },
  };
}
