/**
 * Ends an exhaustive switch: a value reaching it means a case is missing, and
 * since the argument is `never`, the type check reports that first.
 */
export function assertNever(value: never): never {
  throw new Error(`unhandled case: ${JSON.stringify(value)}`);
}
