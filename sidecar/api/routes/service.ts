import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import type { Registry } from "prom-client";
import { z } from "zod";
import { errorBody } from "../schemas.js";

export const serviceRoutes: FastifyPluginAsyncZod<{ registry: Registry }> = async (app, { registry }) => {
  app.get(
    "/healthz",
    {
      schema: {
        tags: ["service"],
        summary: "Liveness of the sidecar process (no authentication)",
        security: [],
        response: { 200: z.object({ status: z.literal("ok") }) },
      },
    },
    async () => ({ status: "ok" as const }),
  );

  app.get(
    "/metrics",
    {
      schema: {
        tags: ["service"],
        summary: "Prometheus metrics (text exposition format)",
        produces: ["text/plain"],
        response: { 401: errorBody },
      },
    },
    async (_request, reply) => {
      const text = await registry.metrics();
      // Sent as text, not through the JSON serializer (its schema lists only the error).
      return reply.header("content-type", registry.contentType).send(text as never);
    },
  );
};
