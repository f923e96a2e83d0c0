/**
 * Domain errors. The API maps each to one HTTP status in a single error handler; the CLI maps
 * them to messages and exit codes. Nothing below the API knows about HTTP.
 */
export class DomainError extends Error {
  constructor(
    message: string,
    readonly code: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** Another mutating operation is running. */
export class ConflictError extends DomainError {
  constructor(
    message: string,
    readonly operationId: string,
  ) {
    super(message, "operation_running", { operation_id: operationId });
  }
}

export class NotFoundError extends DomainError {
  constructor(message: string) {
    super(message, "not_found");
  }
}

/** The request is understood but cannot be carried out in the cluster's current state. */
export class PreconditionError extends DomainError {
  constructor(message: string, details?: Record<string, unknown>) {
    super(message, "precondition_failed", details);
  }
}

export class NodeUnreachableError extends DomainError {
  constructor(message: string, node: string) {
    super(message, "node_unreachable", { node });
  }
}

export class NotImplementedError extends DomainError {
  constructor(message: string) {
    super(message, "not_implemented");
  }
}

/** The controller's state dir refuses writes: mutating operations wait until it takes them again. */
export class StorageUnavailableError extends DomainError {
  constructor(message: string, problem: string) {
    super(
      `${message}; no mutating operation starts until the state dir takes writes again (it is retried every few seconds)`,
      "storage_unavailable",
      { problem },
    );
  }
}
