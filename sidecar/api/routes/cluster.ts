import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import type { ClusterService } from "../../cluster/service.js";
import {
  errorBody,
  info,
  nodeDetail,
  operationRecord,
  optionalBody,
  status,
  stopNodeRequest,
} from "../schemas.js";
import { triggerOf } from "../trigger.js";

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

  app.post(
    "/api/v1/nodes/:id/stop",
    {
      schema: {
        tags: ["cluster"],
        summary:
          "Stop zigbee2mqtt on a node that is not the active one (e.g. split brain), park its coordinator",
        description:
          "Starts a `fence` operation: stop zigbee2mqtt, park the coordinator (it would go on running the network otherwise), look again, and restore the active's bridge state. 422 for the active node.",
        params: z.object({ id: z.string() }),
        body: optionalBody(stopNodeRequest),
        response: {
          202: operationRecord,
          400: errorBody,
          401: errorBody,
          404: errorBody,
          409: errorBody,
          413: errorBody,
          415: errorBody,
          422: errorBody,
          503: errorBody,
          507: errorBody,
        },
      },
    },
    async (request, reply) =>
      reply
        .code(202)
        .send(cluster.stopNode(request.params.id, triggerOf(request.headers), request.body.reason)),
  );
};
