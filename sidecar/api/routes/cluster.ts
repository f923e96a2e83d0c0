import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import type { ClusterService } from "../../cluster/service.js";
import { errorBody, info, nodeDetail, status } from "../schemas.js";

export const clusterRoutes: FastifyPluginAsyncZod<{ cluster: ClusterService }> = async (app, { cluster }) => {
  app.get(
    "/api/v1/info",
    {
      schema: {
        tags: ["cluster"],
        summary: "Instance id, version and node ids",
        response: { 200: info, 401: errorBody },
      },
    },
    async () => cluster.info(),
  );

  app.get(
    "/api/v1/status",
    {
      schema: {
        tags: ["cluster"],
        summary: "Active node, every node's role and health, automation, last sync and switchover",
        response: { 200: status, 401: errorBody },
      },
    },
    async () => cluster.status(),
  );

  app.get(
    "/api/v1/nodes/:id",
    {
      schema: {
        tags: ["cluster"],
        summary: "One node in detail",
        params: z.object({ id: z.string() }),
        response: { 200: nodeDetail, 401: errorBody, 404: errorBody },
      },
    },
    async (request) => cluster.node(request.params.id),
  );
};
