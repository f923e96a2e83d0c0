import type { FastifyError, FastifyInstance } from "fastify";
import { hasZodFastifySchemaValidationErrors, isResponseSerializationError } from "fastify-type-provider-zod";
import {
  ConflictError,
  DomainError,
  NodeUnreachableError,
  NotFoundError,
  PreconditionError,
  StorageUnavailableError,
} from "../../cluster/errors.js";

export class HttpError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
  }
}

function statusOf(error: DomainError): number {
  if (error instanceof ConflictError) return 409;
  if (error instanceof NotFoundError) return 404;
  if (error instanceof NodeUnreachableError) return 503;
  if (error instanceof PreconditionError) return 422;
  // 507 Insufficient Storage: the server cannot store what the operation needs (RFC 4918).
  if (error instanceof StorageUnavailableError) return 507;
  if (error.code === "not_implemented") return 501;
  return 500;
}

/** `/api/v1/nodes/:id` → a regex matching the paths it serves. */
function routePattern(url: string): RegExp {
  const parts = url.split("/").map((part) => {
    if (part.startsWith(":")) return "[^/]+";
    if (part === "*") return ".*";
    return part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  });
  return new RegExp(`^${parts.join("/")}$`);
}

/** The one place errors become HTTP responses: `{error: {code, message, details?}}`. */
export function registerErrorHandling(app: FastifyInstance): void {
  // Known paths with their methods, so that a known path asked with another method is a 405.
  const routes: { methods: string[]; pattern: RegExp }[] = [];
  app.addHook("onRoute", (route) => {
    routes.push({
      methods: (Array.isArray(route.method) ? route.method : [route.method]).map(String),
      pattern: routePattern(route.url),
    });
  });
  // Decided before anything reads a body: a QUERY or TRACE on a known path is a 405, not a
  // complaint about its missing content type.
  app.addHook("onRequest", async (request, reply) => {
    if (!request.is404) return;
    const path = request.url.split("?")[0] ?? "";
    const allowed = [...new Set(routes.filter((r) => r.pattern.test(path)).flatMap((r) => r.methods))];
    if (allowed.length === 0) return;
    return reply
      .code(405)
      .header("allow", allowed.join(", "))
      .send({
        error: {
          code: "method_not_allowed",
          message: `${request.method} is not allowed on ${path} (allowed: ${allowed.join(", ")})`,
        },
      });
  });
  app.setNotFoundHandler((request, reply) => {
    reply.code(404).send({
      error: { code: "not_found", message: `no route ${request.method} ${request.url.split("?")[0]}` },
    });
  });

  app.setErrorHandler((error: FastifyError | Error, request, reply) => {
    if (hasZodFastifySchemaValidationErrors(error)) {
      const issues = error.validation.flatMap((v) => {
        const branches = (v.params as { errors?: ZodIssueLike[][] } | undefined)?.errors;
        if (v.keyword === "invalid_union" && branches?.length) {
          const prefix = v.instancePath.split("/").filter(Boolean);
          return closestBranch({ path: prefix, errors: branches }).map((i) => ({
            path: formatInstancePath("", i),
            message: i.message ?? "invalid",
          }));
        }
        return [
          { path: formatInstancePath(v.instancePath, v.params?.issue), message: v.message ?? "invalid" },
        ];
      });
      const where = error.validationContext ?? "request";
      reply.code(400).send({
        error: {
          code: "bad_request",
          message: issues.map((i) => `${where}${i.path ? `.${i.path}` : ""}: ${i.message}`).join("; "),
          details: { issues, in: where },
        },
      });
      return;
    }
    if (error instanceof HttpError) {
      if (error.statusCode === 401) reply.header("www-authenticate", 'Bearer realm="zigbee2mqtt-ha"');
      reply.code(error.statusCode).send({
        error: {
          code: error.code,
          message: error.message,
          ...(error.details ? { details: error.details } : {}),
        },
      });
      return;
    }
    if (error instanceof DomainError) {
      reply.code(statusOf(error)).send({
        error: {
          code: error.code,
          message: error.message,
          ...(error.details ? { details: error.details } : {}),
        },
      });
      return;
    }
    if (isResponseSerializationError(error)) {
      request.log.error({ err: error, issues: error.cause.issues }, "response does not match its schema");
      reply
        .code(500)
        .send({ error: { code: "internal", message: "internal error: response does not match its schema" } });
      return;
    }
    const fastifyError = error as FastifyError;
    if (fastifyError.statusCode && fastifyError.statusCode >= 400 && fastifyError.statusCode < 500) {
      reply.code(fastifyError.statusCode).send({
        error: { code: fastifyError.code?.toLowerCase() ?? "bad_request", message: fastifyError.message },
      });
      return;
    }
    request.log.error({ err: error }, "unhandled error");
    reply.code(500).send({ error: { code: "internal", message: "internal error" } });
  });
}

interface ZodIssueLike {
  code?: string;
  path?: PropertyKey[];
  message?: string;
  errors?: ZodIssueLike[][];
}

/**
 * A union's failure as the issues of the branch the input came closest to (fewest problems),
 * with full paths: `{maintenance: "yes"}` is "maintenance: expected boolean", not "invalid input".
 */
function closestBranch(issue: ZodIssueLike): ZodIssueLike[] {
  const branches = issue.errors ?? [];
  const best = [...branches].sort((a, b) => a.length - b.length)[0] ?? [];
  return best.map((i) => ({ ...i, path: [...(issue.path ?? []), ...(i.path ?? [])] }));
}

/** "/target" and a zod issue path → "target", "nodes[1].id" style. */
function formatInstancePath(instancePath: string, issue: unknown): string {
  const fromIssue = (issue as { path?: PropertyKey[] } | undefined)?.path;
  const parts: PropertyKey[] =
    fromIssue && fromIssue.length > 0 ? fromIssue : instancePath.split("/").filter(Boolean);
  let out = "";
  for (const part of parts) {
    if (typeof part === "number" || /^\d+$/.test(String(part))) out += `[${String(part)}]`;
    else out += out === "" ? String(part) : `.${String(part)}`;
  }
  return out;
}
