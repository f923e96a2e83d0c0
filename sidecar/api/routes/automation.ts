import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import type { ClusterService } from "../../cluster/service.js";
import { automationPatch, automationState, errorBody } from "../schemas.js";

export const automationRoutes: FastifyPluginAsyncZod<{ cluster: ClusterService }> = async (
  app,
  { cluster },
) => {
  app.put(
    "/api/v1/automation",
    {
      schema: {
        tags: ["automation"],
        summary: "Pause or resume automation (automatic failover, maintenance mode)",
        body: automationPatch,
        response: { 200: automationState, 400: errorBody, 401: errorBody, 413: errorBody, 415: errorBody },
      },
    },
    async (request) => cluster.setAutomation(request.body, "api"),
  );
};
