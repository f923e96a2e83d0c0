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
        produces: ["text/plain", "application/json"],
        response: {
          200: z.string().meta({ description: "Prometheus text exposition format" }),
          401: errorBody,
        },
      },
    },
    async (_request, reply) => {
      const text = await registry.metrics();
      // Text as it is: the route's JSON serializer would quote it.
      return reply
        .header("content-type", registry.contentType)
        .serializer((body: unknown) => body as string)
        .send(text);
    },
  );
};
