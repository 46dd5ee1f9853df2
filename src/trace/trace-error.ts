/**
 * A trace error: bad input that a person must fix. It names the file, the
 * 1-based line and the field (a JSON path such as `arg.iova`), and says what
 * was expected.
 */
export class TraceError extends Error {
  constructor(
    readonly file: string,
    readonly line: number,
    readonly field: string | undefined,
    readonly reason: string,
  ) {
    super(`${file}:${line}: ${field ? `field ${field}: ` : ''}${reason}`);
    this.name = 'TraceError';
  }
}

/** Thrown by converters that do not know the file or line yet. */
export class FieldError extends Error {
  constructor(
    readonly field: string,
    readonly reason: string,
  ) {
    super(`field ${field}: ${reason}`);
    this.name = 'FieldError';
  }
}
