// Typed errors: the CLI prints their message as one line; anything else is a bug and gets a stack.

/** A configuration file, key or value that cannot be used. The message names all three. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(
    readonly file: string,
    readonly key: string | undefined,
    readonly value: unknown,
    readonly problem: string,
  ) {
    super(`${file}: ${key === undefined ? '' : `${key} = ${value === undefined ? '(missing)' : JSON.stringify(value)}: `}${problem}`);
  }
}

/** Bad command-line input. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** An instance could not be reached or refused a statement; `instance` is "host:port". */
export class InstanceError extends Error {
  override readonly name = 'InstanceError';
  constructor(
    readonly instance: string,
    message: string,
    readonly code?: string,
    options?: { cause?: unknown },
  ) {
    super(`${instance}: ${message}`, options);
  }
}

/** An operation that could not be done as asked (duplicate backup id, partial schedule …). */
export class OperationError extends Error {
  override readonly name: string = 'OperationError';
}

export function isUserFacing(err: unknown): err is ConfigError | UsageError | InstanceError | OperationError {
  return err instanceof ConfigError || err instanceof UsageError || err instanceof InstanceError || err instanceof OperationError;
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
