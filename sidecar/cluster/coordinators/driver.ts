/**
 * The seam between a takeover and a family of coordinators. A takeover (operations/takeover.ts)
 * owns what every coordinator shares: choosing the target, the preflight, stopping and fencing the
 * old active, the data dir, starting the target and waiting for it online, persisting, rollback.
 * A driver owns what its coordinators need in between: how their state is captured, written,
 * verified, parked, wiped and how their frame counter is read and raised.
 *
 * One driver per node, chosen by `coordinator.type` (every node of a cluster has the same).
 */

import type { ClusterContext } from "../context.js";
import type { TakeoverContext } from "../operations/takeover-context.js";
import type { Step } from "../runner.js";

export type CoordinatorType = "zstack-nvram" | "z2m-backup";

export interface CoordinatorDriver {
  readonly type: CoordinatorType;

  /** What the node lacks for this driver (tools, port), checked before a takeover onto it. */
  preflight(cx: ClusterContext, node: string): Promise<string[]>;

  /**
   * A switchover's coordinator steps: `prepare` runs on the target while the old active still runs
   * (no outage yet); `outage` runs once the old active's zigbee2mqtt stopped, and ends with the
   * target's dongle holding the network, the old active's parked and the target's data dir written.
   */
  switchoverSteps(
    cx: ClusterContext,
    ctx: TakeoverContext,
  ): { prepare: Step<TakeoverContext>[]; outage: Step<TakeoverContext>[] };

  /**
   * A failover's coordinator steps, after the old active is fenced and the target stopped: the
   * target's dongle brought to the freshest state held, above every counter the network used,
   * verified, and its data dir written.
   */
  failoverSteps(cx: ClusterContext, ctx: TakeoverContext): Step<TakeoverContext>[];

  /**
   * Once the target is online with the expected identity, before the takeover commits: whatever
   * else the driver must confirm (z2m-backup: that zigbee2mqtt restored the backup). A failure
   * rolls the takeover back.
   */
  confirmStarted?(cx: ClusterContext, ctx: TakeoverContext, signal: AbortSignal): Promise<string>;

  /**
   * The fenced old active answered and its zigbee2mqtt is stopped: capture what its coordinator
   * holds (fresher than anything the controller has) into `ctx`, and park it. Never throws: what
   * could not be done is the returned detail and a note.
   */
  captureAndPark(
    cx: ClusterContext,
    ctx: TakeoverContext,
    node: string,
    signal: AbortSignal,
  ): Promise<string>;

  /** Silences a coordinator: it keeps its state but runs no network until zigbee2mqtt starts it. */
  park(cx: ClusterContext, node: string, signal: AbortSignal, notes?: string[]): Promise<string>;

  /**
   * A copy that may have run the network (its zigbee2mqtt was started) is retired: the highest
   * counter it reached, when it can be read, then wiped.
   */
  retire(cx: ClusterContext, node: string, signal: AbortSignal, notes: string[]): Promise<number | undefined>;

  /** Raises the node's network frame counter above `above` (+ the increment), its network kept. */
  raiseCounter(
    cx: ClusterContext,
    node: string,
    above: number | undefined,
    signal: AbortSignal,
    notes: string[],
  ): Promise<string>;

  /**
   * After a sync: make a standby's dongle ready for a failover (operations/standby.ts). Returns
   * what was done, or why not.
   */
  arm(
    cx: ClusterContext,
    node: string,
    signal: AbortSignal,
    operationId: string,
    notes: string[],
  ): Promise<string>;
}
