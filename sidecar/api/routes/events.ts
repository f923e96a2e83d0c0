import type { ServerResponse } from "node:http";
import type { FastifyPluginAsync } from "fastify";
import { z } from "zod";
import type { EventBus, Stamped } from "../../notify/bus.js";
import { HttpError } from "../plugins/errors.js";
import { errorBody } from "../schemas.js";

const HEARTBEAT_MS = 15_000;

export interface EventStreamOptions {
  bus: EventBus;
  /** Clients at once; one more gets 503. */
  maxClients: number;
  /**
   * Bytes a client may leave unread in its send buffer. A client that falls further behind is
   * dropped (it reconnects with Last-Event-ID and catches up or resyncs), so a client that never
   * reads costs at most this much memory.
   */
  maxBufferBytes?: number;
}

function frame(event: Stamped): string {
  return `id: ${event.seq}\nevent: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`;
}

/**
 * Server-Sent Events: every bus event as `event: <type>`, `id: <seq>`, `data: <json>`. A client
 * reconnecting with Last-Event-ID gets what it missed, or a `resync` event telling it to fetch
 * /api/v1/status again when the gap is too old.
 */
export const eventRoutes: FastifyPluginAsync<EventStreamOptions> = async (app, options) => {
  const { bus, maxClients } = options;
  const maxBuffer = options.maxBufferBytes ?? 256 * 1024;
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
          "bridge.changed, alert.raised, alert.cleared; `resync` when missed events are no longer available. " +
          `At most ${maxClients} clients at once (503 beyond); a client that leaves more than ${maxBuffer} bytes unread is disconnected.`,
        // Errors (401, 503) come as JSON like everywhere else.
        produces: ["text/event-stream", "application/json"],
        response: {
          200: z
            .object({
              id: z.string().optional(),
              event: z.string().optional(),
              data: z.string().optional().meta({ description: "the event as JSON, with seq and ts" }),
              retry: z.union([z.string(), z.number()]).optional(),
            })
            .meta({ description: "one Server-Sent Event of the text/event-stream" }),
          401: errorBody,
          503: errorBody,
        },
      },
    },
    (request, reply) => {
      if (open.size >= maxClients)
        throw new HttpError(
          503,
          "too_many_clients",
          `the event stream already has ${open.size} clients (server.max_event_clients)`,
        );
      const res = reply.raw;
      reply.hijack();
      res.writeHead(200, {
        "content-type": "text/event-stream; charset=utf-8",
        "cache-control": "no-cache, no-transform",
        connection: "keep-alive",
        "x-accel-buffering": "no",
      });
      let unsubscribe = () => {};
      let heartbeat: NodeJS.Timeout | undefined;
      const cleanup = () => {
        clearInterval(heartbeat);
        unsubscribe();
        open.delete(res);
      };
      // Writes never wait for a slow reader: what it has not read stays in its buffer, up to the cap.
      const send = (text: string) => {
        if (res.destroyed || res.writableEnded) return;
        if (res.writableLength > maxBuffer) {
          request.log.warn(
            { unread: res.writableLength },
            "event-stream client too far behind: disconnected (it can reconnect with Last-Event-ID)",
          );
          cleanup();
          res.destroy();
          return;
        }
        res.write(text);
      };
      send(`retry: 3000\n: connected, last event ${bus.lastSeq}\n\n`);
      const lastId = Number(request.headers["last-event-id"]);
      if (Number.isInteger(lastId) && lastId >= 0) {
        const missed = bus.since(lastId);
        if (missed) for (const event of missed) send(frame(event));
        else send(`event: resync\ndata: {"seq":${bus.lastSeq}}\n\n`);
      }
      unsubscribe = bus.subscribe((event) => send(frame(event)));
      heartbeat = setInterval(() => send(": keep-alive\n\n"), HEARTBEAT_MS);
      open.add(res);
      res.on("close", cleanup);
      res.on("error", cleanup);
    },
  );
};
