/**
 * The sidecar dies (SIGKILL) in the middle of a switchover and is started again on the same state
 * dir: the switchover is recorded as interrupted with what was done, and a recovery operation
 * leaves exactly one node running zigbee2mqtt. Also: one mutating operation at a time (409).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { OperationRecord } from "../../sidecar/types.js";
import { SidecarApi } from "./sidecar-api.js";
import { type SidecarHandle, sharedLab, startSidecar } from "./sidecar-harness.js";
import {
  backgroundOperation,
  dongleAtRest,
  expectActive,
  freshNetwork,
  type Identity,
  leaveNode1Active,
  runningNodes,
  runWhenFree,
  startWhenFree,
} from "./takeover-checks.js";
import type { Lab } from "./world.js";

let lab: Lab;
let h: SidecarHandle;
let network: Identity;

beforeAll(async () => {
  lab = await sharedLab();
  network = await freshNetwork(lab);
  h = await startSidecar(lab, {
    failover: { automatic: false, arm_standby: false },
    // node3's zigbee2mqtt starts the coordinator, then exits: its broker address is wrong.
    nodes: { node3: { overrides: { "mqtt.server": `mqtt://${lab.info.controller.address}:1884` } } },
  });
  expect((await runWhenFree(h.api, "sync")).status).toBe("succeeded");
});

afterAll(async () => {
  await h?.stop();
  await leaveNode1Active(lab);
});

/**
 * Starts a switchover to `to`, SIGKILLs the sidecar while the step `at` runs, starts it again on
 * the same config and state dir, and waits for the recovery it runs at start-up to finish.
 */
async function killDuring(
  to: string,
  at: string,
  whileDown: () => Promise<void> = async () => {},
): Promise<{ interrupted: OperationRecord; recovery: OperationRecord }> {
  const events = h.api.events();
  await events.ready;
  const op = await startWhenFree(h.api, "switchover", { target: to, reason: "lab: the sidecar dies" });
  await events.step(op.id, (s) => s.name === at && s.status === "running");
  events.stop();
  await h.sidecar.stop("SIGKILL");
  await whileDown();

  const sidecar = await lab.startSidecar(h.configPath);
  h = {
    ...h,
    sidecar,
    api: new SidecarApi(sidecar.url, sidecar.token),
    stop: async () => void (await sidecar.stop()),
  };
  const recovery = await h.api.waitFor(
    "the recovery at start-up",
    async () =>
      (await h.api.operations("recovery")).find(
        (r) => (r.params.interrupted as string[]).includes(op.id) && r.status !== "running",
      ),
    240_000,
  );
  return { interrupted: await h.api.operation(op.id), recovery };
}

/** What the interrupted switchover's record must say: done up to `lastDone`, cut off during `during`. */
function expectInterrupted(op: OperationRecord, lastDone: string, during: string): void {
  expect(op.status).toBe("interrupted");
  expect(op.last_completed_step).toBe(lastDone);
  expect(op.error?.step).toBe(during);
  expect(op.steps.find((s) => s.name === during)?.status).toBe("interrupted");
  const done = op.steps.slice(
    0,
    op.steps.findIndex((s) => s.name === during),
  );
  expect(done.every((s) => s.status === "succeeded")).toBe(true);
  expect(done.at(-1)?.name).toBe(lastDone);
}

describe("one operation at a time", () => {
  it("two switchover requests at once: one runs to its end, the other gets 409 naming it; so do a failover and a sync meanwhile", async () => {
    type Answer = { status: number; body: OperationRecord };
    let answers: Answer[] = [];
    for (let round = 1; round <= 5; round++) {
      await h.api.waitForStatus("the sidecar to be free", (s) => s.running_operation === null);
      answers = await Promise.all([
        h.api.request<Answer["body"]>("POST", "/api/v1/switchover", { target: "node2" }),
        h.api.request<Answer["body"]>("POST", "/api/v1/switchover", { target: "node2" }),
      ]);
      if (answers.some((r) => r.status < 300)) break;
      // Both refused: a sync of the sidecar's own slipped in first; both must name it. Again.
      for (const r of answers) {
        const sync = await backgroundOperation(h.api, r.status, r.body);
        expect(sync).toBeDefined();
        await h.api.finish(sync as OperationRecord);
      }
    }
    const accepted = answers.filter((r) => r.status < 300);
    const refused = answers.filter((r) => r.status === 409);
    expect(accepted).toHaveLength(1);
    expect(refused).toHaveLength(1);
    const running = accepted[0]?.body as OperationRecord;
    expect(refused[0]?.body).toMatchObject({
      error: { code: "operation_running", details: { operation_id: running.id } },
    });
    for (const [path, body] of [
      ["/api/v1/failover", { target: "node3" }],
      ["/api/v1/sync", {}],
    ] as const) {
      const other = await h.api.request("POST", path, body);
      expect(other.status).toBe(409);
      expect(other.body).toMatchObject({ error: { details: { operation_id: running.id } } });
    }
    const done = await h.api.finish(running);
    expect(done.status).toBe("succeeded");
    expect(
      (await h.api.operations("switchover")).filter((o) => o.started_at >= running.started_at),
    ).toHaveLength(1);
    await expectActive(h, "node2", network);
  });
});

describe("the sidecar killed during a switchover and started again", () => {
  it("while stopping the old active: the old active runs the network again, alone", async () => {
    const { interrupted, recovery } = await killDuring("node1", "stop node2");
    expectInterrupted(interrupted, "prepare NVRAM on node1 (before node2 stops)", "stop node2");
    expect(recovery).toMatchObject({ trigger: "startup", status: "succeeded" });
    expect(recovery.result?.actions).toEqual([
      expect.stringMatching(
        /^(node2 runs zigbee2mqtt and stays active|no node was running: started node2 again)/,
      ),
    ]);
    await expectActive(h, "node2", network);
  });

  it("after the NVRAM was written to the target: the old active is started again, the target's copy stays idle", async () => {
    const { interrupted, recovery } = await killDuring(
      "node1",
      "verify NVRAM on node1 and write its data dir",
    );
    expectInterrupted(interrupted, "write NVRAM on node1", "verify NVRAM on node1 and write its data dir");
    expect(recovery).toMatchObject({ trigger: "startup", status: "succeeded" });
    expect(recovery.result?.actions).toEqual([
      expect.stringMatching(/^no node was running: started node2 again/),
    ]);
    await expectActive(h, "node2", network);
    expect((await dongleAtRest(lab, "node1")).state).toBe("hold");
  });

  it("after the target was started: the target, online, becomes the active node", async () => {
    const { interrupted, recovery } = await killDuring("node1", "wait for node1 online");
    expectInterrupted(interrupted, "start node1", "wait for node1 online");
    expect(recovery).toMatchObject({ trigger: "startup", status: "succeeded" });
    expect(recovery.result?.actions).toEqual([
      "node1 already runs the network: it is now the active node (was node2)",
    ]);
    await expectActive(h, "node1", network);
    expect(await runningNodes(lab)).toEqual(["node1"]);
    expect((await dongleAtRest(lab, "node2")).state).toBe("hold");
    // node1's coordinator counts above anything node2's sent (the switchover's copy was raised).
    expect((await lab.simulator("node1").status()).nwk_frame_counter).toBeGreaterThan(
      (await dongleAtRest(lab, "node2")).max_nwk_frame_counter,
    );
  });

  it("after the target was started, and its zigbee2mqtt exited while the sidecar was down: the old active resumes above the target's counter", async () => {
    const { interrupted, recovery } = await killDuring("node3", "wait for node3 online");
    expectInterrupted(interrupted, "start node3", "wait for node3 online");
    expect(recovery).toMatchObject({ trigger: "startup", status: "succeeded" });
    // node3 may still have been exiting when the sidecar looked: then it is stopped first.
    const actions = recovery.result?.actions as string[];
    if (actions.length === 4)
      expect(actions[0]).toMatch(/^node3 ran zigbee2mqtt but did not come online \(.*exited while starting/);
    expect(actions.slice(-3)).toEqual([
      expect.stringMatching(/^retired the copy of the network on node3 \(its counter reached \d+\)/),
      expect.stringMatching(/^raised the frame counter on node1: frame counter \d+ → \d+/),
      expect.stringMatching(/^no node was running: started node1 again/),
    ]);
    await expectActive(h, "node1", network);
    const node3 = await dongleAtRest(lab, "node3");
    expect(node3).toMatchObject({ state: "hold", configured: false });
    expect((await lab.simulator("node1").status()).nwk_frame_counter).toBeGreaterThan(
      node3.max_nwk_frame_counter,
    );
  });

  it("after the target was started, and it is out of reach when the sidecar comes back: the target is presumed active, the old active stays stopped", async () => {
    try {
      const { interrupted, recovery } = await killDuring("node3", "wait for node3 online", () =>
        lab.fault("cut-link", "node3"),
      );
      expectInterrupted(interrupted, "start node3", "wait for node3 online");
      expect(recovery).toMatchObject({ trigger: "startup", status: "succeeded" });
      expect(recovery.result?.actions).toEqual([
        "node3's zigbee2mqtt was started by the interrupted operation and node3 is unreachable: it may run the network, so node1 stays stopped and node3 is recorded as the active node",
      ]);
      const status = await h.api.status();
      expect(status.active).toBe("node3");
      expect(status.alerts.find((a) => a.kind === "recovery")).toMatchObject({ severity: "critical" });
      expect((await lab.service("node1", "status")).code).not.toBe(0);
      expect((await dongleAtRest(lab, "node1")).state).toBe("hold");
    } finally {
      await lab.fault("restore-link", "node3");
    }
  });
});
