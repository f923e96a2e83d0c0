import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import type { ClusterService } from "../../cluster/service.js";
import {
  errorBody,
  failoverRequest,
  operationRecord,
  operationsQuery,
  optionalBody,
  switchoverRequest,
  syncRequest,
} from "../schemas.js";
import { triggerOf } from "../trigger.js";

/**
 * What a mutating request can answer: 404 for an unknown target node, 409 while another
 * operation runs, 413/415 for a body too large or not JSON, 422 when the cluster's state does not
 * allow it, 503 when a node is unreachable, 507 while the state dir refuses writes.
 */
const accepted = {
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
};

export const operationRoutes: FastifyPluginAsyncZod<{ cluster: ClusterService }> = async (
  app,
  { cluster },
) => {
  app.post(
    "/api/v1/switchover",
    {
      schema: {
        tags: ["operations"],
        summary: "Planned switchover to another node",
        description:
          "Starts the operation and answers 202 with it; 409 while another mutating operation runs.",
        body: optionalBody(switchoverRequest),
        response: accepted,
      },
    },
    async (request, reply) =>
      reply.code(202).send(cluster.switchover(request.body ?? {}, triggerOf(request.headers))),
  );

  app.post(
    "/api/v1/failover",
    {
      schema: {
        tags: ["operations"],
        summary: "Unplanned takeover when the active node is dead: fence it, restore on the target",
        body: optionalBody(failoverRequest),
        response: accepted,
      },
    },
    async (request, reply) =>
      reply.code(202).send(cluster.failover(request.body ?? {}, triggerOf(request.headers))),
  );

  app.post(
    "/api/v1/sync",
    {
      schema: {
        tags: ["operations"],
        summary: "Copy the active node's data dir to every standby's staging dir now",
        body: optionalBody(syncRequest),
        response: accepted,
      },
    },
    async (request, reply) =>
      reply.code(202).send(cluster.sync(triggerOf(request.headers), request.body?.reason)),
  );

  app.post(
    "/api/v1/check",
    {
      schema: {
        tags: ["operations"],
        summary: "Preflight of every node (ssh, sudo, tools, port, disk, clock)",
        description:
          "While a check runs, asking again answers with the running check instead of starting another.",
        response: { 202: operationRecord, 401: errorBody },
      },
    },
    async (request, reply) => reply.code(202).send(cluster.check(triggerOf(request.headers))),
  );

  app.get(
    "/api/v1/operations",
    {
      schema: {
        tags: ["operations"],
        summary: "Operation history, newest first",
        querystring: operationsQuery,
        response: { 200: z.object({ operations: z.array(operationRecord) }), 400: errorBody, 401: errorBody },
      },
    },
    async (request) => ({ operations: cluster.operations(request.query.limit, request.query.kind) }),
  );

  app.get(
    "/api/v1/operations/:id",
    {
      schema: {
        tags: ["operations"],
        summary: "One operation with its steps",
        params: z.object({ id: z.string() }),
        response: { 200: operationRecord, 401: errorBody, 404: errorBody },
      },
    },
    async (request) => cluster.operation(request.params.id),
  );
};
