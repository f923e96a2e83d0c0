import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import type { ClusterService } from "../../cluster/service.js";
import { errorBody, operationRecord, restoreSnapshotRequest, snapshotInfo } from "../schemas.js";

export const snapshotRoutes: FastifyPluginAsyncZod<{ cluster: ClusterService }> = async (
  app,
  { cluster },
) => {
  app.get(
    "/api/v1/snapshots",
    {
      schema: {
        tags: ["snapshots"],
        summary: "Snapshots kept by the controller, newest first",
        response: { 200: z.object({ snapshots: z.array(snapshotInfo) }), 401: errorBody },
      },
    },
    async () => ({ snapshots: cluster.snapshots() }),
  );

  app.post(
    "/api/v1/snapshots/:id/restore",
    {
      schema: {
        tags: ["snapshots"],
        summary: "Restore a data-dir snapshot into a standby's staging dir",
        params: z.object({ id: z.string() }),
        body: restoreSnapshotRequest,
        response: {
          202: operationRecord,
          400: errorBody,
          401: errorBody,
          404: errorBody,
          409: errorBody,
          413: errorBody,
          415: errorBody,
          422: errorBody,
          507: errorBody,
        },
      },
    },
    async (request, reply) =>
      reply.code(202).send(cluster.restoreSnapshot(request.params.id, request.body.node, "api")),
  );
};
