import { createHash, timingSafeEqual } from "node:crypto";
import type { FastifyInstance, FastifyRequest } from "fastify";
import { HttpError } from "./errors.js";

/** Routes reachable without the token: liveness, and the API's own description (no state, no secrets). */
const PUBLIC = [/^\/healthz$/, /^\/openapi\.json$/, /^\/docs(\/.*)?$/];

function digest(value: string): Buffer {
  return createHash("sha256").update(value).digest();
}

/**
 * Bearer-token authentication for every other route. Both sides are hashed first so the
 * constant-time comparison also hides the token's length.
 */
export function registerAuth(app: FastifyInstance, token: string): void {
  const expected = digest(token);
  app.addHook("onRequest", async (request: FastifyRequest) => {
    const path = request.url.split("?")[0] ?? "";
    if (PUBLIC.some((re) => re.test(path))) return;
    const header = request.headers.authorization;
    const match = header ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
    if (!match || !timingSafeEqual(digest(match[1] as string), expected)) {
      throw new HttpError(401, "unauthorized", header ? "invalid token" : "missing bearer token");
    }
  });
}
