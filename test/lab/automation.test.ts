/**
 * The scheduled switchover (issue 6: "optional, cron-like schedule, skipped unless the target is
 * ready") in the lab, against the real sidecar: a schedule that fires every 4 seconds, shorter than any switchover (croner's
 * six-field form, seconds first) records a skip while no standby is ready and in maintenance mode,
 * and switches over to the best ready standby once there is one.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  decisionsSince,
  leaveNode1Active,
  opsSince,
  startedAt,
  waitForDecision,
  waitForEnded,
  waitForReadyStandbys,
} from "./policy-helpers.js";
import { baseline, type SidecarHandle, sharedLab, startSidecar } from "./sidecar-harness.js";
import type { Lab } from "./world.js";

const SCHEDULE = "*/4 * * * * *";
const SKIPPED = "scheduled switchover skipped";

let lab: Lab;
let h: SidecarHandle;

beforeAll(async () => {
  lab = await sharedLab();
  await baseline(lab);
  // No standby can be ready while its dongle is unplugged, whatever is staged.
  await lab.fault("unplug", "node2");
  await lab.fault("unplug", "node3");
  h = await startSidecar(lab, { schedule: { switchover: SCHEDULE } });
});

afterAll(async () => {
  await h?.stop();
  await leaveNode1Active(lab);
});

describe("scheduled switchover", () => {
  it("fires on its schedule: skipped (and recorded) with no standby ready and in maintenance mode, a switchover to the best ready standby otherwise", async () => {
    const start = Date.now();
    const none = await waitForDecision(h.api, start, SKIPPED, () => true, 30_000);
    expect(none).toMatchObject({ trigger: "schedule", params: { schedule: SCHEDULE } });
    expect(none.result?.detail).toBe("no standby is ready");
    // It fired on the schedule: at a whole multiple of 4 seconds (plus the time to record it).
    expect(startedAt(none) % 4_000).toBeLessThan(1_000);
    expect(await opsSince(h.api, start, "switchover")).toEqual([]);

    const paused = Date.now();
    await h.api.call("PUT", "/api/v1/automation", { maintenance: true });
    const maintenance = await waitForDecision(
      h.api,
      paused,
      SKIPPED,
      (d) => d.trigger === "schedule",
      30_000,
    );
    expect(maintenance.result?.detail).toBe("maintenance mode");
    expect(await opsSince(h.api, start, "switchover")).toEqual([]);

    // Standbys ready: plugged in and synced. Maintenance mode is still on, so nothing switches yet.
    await lab.fault("replug", "node2");
    await lab.fault("replug", "node3");
    expect((await h.api.run("sync")).status).toBe("succeeded");
    await waitForReadyStandbys(h.api);
    expect(await opsSince(h.api, start, "switchover")).toEqual([]);

    const resumed = Date.now();
    await h.api.call("PUT", "/api/v1/automation", { maintenance: false });
    const switchover = await waitForEnded(h.api, "switchover", resumed);
    expect(switchover, JSON.stringify(switchover.error)).toMatchObject({
      status: "succeeded",
      trigger: "schedule",
      reason: "scheduled switchover",
      params: { from: "node1", to: "node2" },
    });
    expect(startedAt(switchover) % 4_000).toBeLessThan(1_000);
    await lab.waitForZigbee2mqtt("node2");
    expect((await h.api.status()).active).toBe("node2");
    // A firing while the switchover ran was skipped, not queued behind it.
    const busy = (await decisionsSince(h.api, resumed, SKIPPED)).filter(
      (d) => startedAt(d) > startedAt(switchover) && startedAt(d) < Date.parse(switchover.finished_at ?? ""),
    );
    expect(busy.length).toBeGreaterThan(0);
    for (const d of busy) expect(d.result?.detail).toBe(`another operation is running (${switchover.id})`);
    // Stop it from switching back and forth for the rest of the run.
    await h.api.call("PUT", "/api/v1/automation", { maintenance: true });
  });
});
