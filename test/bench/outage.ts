import type { Lab } from "../lab/world.js";

/** Watches bridge/state on the lab's broker and reports offline → online outages, as a user sees them. */
export async function outageWatcher(lab: Lab) {
  const client = await lab.mqtt();
  let offlineAt: number | undefined;
  const outages: number[] = [];
  await client.subscribeAsync("zigbee2mqtt/bridge/state");
  client.on("message", (_topic, payload) => {
    const text = payload.toString();
    const state = text.includes("offline") ? "offline" : text.includes("online") ? "online" : undefined;
    if (state === "offline" && offlineAt === undefined) offlineAt = Date.now();
    if (state === "online" && offlineAt !== undefined) {
      outages.push(Date.now() - offlineAt);
      offlineAt = undefined;
    }
  });
  return {
    take(): number | undefined {
      return outages.shift();
    },
    reset() {
      outages.length = 0;
      offlineAt = undefined;
    },
    async close() {
      await client.endAsync();
    },
  };
}

export type OutageWatcher = Awaited<ReturnType<typeof outageWatcher>>;
