import type { ServerResponse } from "node:http";
import type { FastifyPluginAsync } from "fastify";
import type { EventBus, Stamped } from "../../notify/bus.js";

const HEARTBEAT_MS = 15_000;

function frame(event: Stamped): string {
  return `id: ${event.seq}\nevent: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`;
}

/**
 * Server-Sent Events: every bus event as `event: <type>`, `id: <seq>`, `data: <json>`. A client
 * reconnecting with Last-Event-ID gets what it missed, or a `resync` event telling it to fetch
 * /api/v1/status again when the gap is too old.
 */
export const eventRoutes: FastifyPluginAsync<{ bus: EventBus }> = async (app, { bus }) => {
  const open = new Set<ServerResponse>();

  app.addHook("preClose", async () => {
    for (const res of open) res.end();
    open.clear();
  });

  app.get(
    "/api/v1/events",
    {
      schema: {
        tags: ["events"],
        summary: "Server-Sent Events: state changes and operation progress",
        description:
          "Event types: operation.started, operation.step, operation.finished, state.changed, node.changed, " +
          "bridge.changed, alert.raised, alert.cleared; `resync` when missed events are no longer available.",
        produces: ["text/event-stream"],
      },
    },
    (request, reply) => {
      const res = reply.raw;
      reply.hijack();
      res.writeHead(200, {
        "content-type": "text/event-stream; charset=utf-8",
        "cache-control": "no-cache, no-transform",
        connection: "keep-alive",
        "x-accel-buffering": "no",
      });
      res.write(`retry: 3000\n: connected, last event ${bus.lastSeq}\n\n`);
      const lastId = Number(request.headers["last-event-id"]);
      if (Number.isInteger(lastId) && lastId >= 0) {
        const missed = bus.since(lastId);
        if (missed) for (const event of missed) res.write(frame(event));
        else res.write(`event: resync\ndata: {"seq":${bus.lastSeq}}\n\n`);
      }
      const unsubscribe = bus.subscribe((event) => res.write(frame(event)));
      const heartbeat = setInterval(() => res.write(": keep-alive\n\n"), HEARTBEAT_MS);
      open.add(res);
      const cleanup = () => {
        clearInterval(heartbeat);
        unsubscribe();
        open.delete(res);
      };
      res.on("close", cleanup);
      res.on("error", cleanup);
    },
  );
};
