/**
 * Input checks shared by the services, with zod. A failure becomes one
 * BAD_USER_INPUT naming the field and the limit, before anything is written.
 */
import { z } from 'zod';
import { badInput } from './errors.js';

/** `field` names a bare value (an argument); an object's issues name their own path. */
export function parseInput<T extends z.ZodType>(schema: T, input: unknown, field = 'input'): z.infer<T> {
  const parsed = schema.safeParse(input);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  throw badInput(issue.path.join('.') || field, issue.message);
}

// PostgreSQL text cannot hold a NUL (it fails the statement), so it is refused here.
// eslint-disable-next-line no-control-regex -- the control character is the point
const NO_NUL = /^[^\u0000]*$/;
const NUL_MESSAGE = 'must not contain a NUL character';

/** Text that must have content, up to `max` characters (the column's size). */
export const requiredText = (max: number) =>
  z
    .string()
    .regex(NO_NUL, NUL_MESSAGE)
    .trim()
    .min(1, 'must not be empty')
    .max(max, `must be at most ${max} characters`);

export const optionalText = (max: number) =>
  z
    .string()
    .regex(NO_NUL, NUL_MESSAGE)
    .trim()
    .max(max, `must be at most ${max} characters`)
    .transform((value) => (value === '' ? null : value))
    .nullish();

export const uuid = z.string().regex(
  /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i,
  'must be a UUID such as 6f1c2a3e-8b4d-4c1a-9e2f-0a1b2c3d4e5f',
);

export const METADATA_MAX_BYTES = 16 * 1024;
export const METADATA_MAX_DEPTH = 32;

/**
 * What jsonb and the recursive code on the way there (JSON.stringify, the
 * drivers) cannot take: nesting deeper than METADATA_MAX_DEPTH objects and
 * arrays, or a NUL in a key or a string. Walked with a stack, not recursion.
 */
function jsonProblem(root: unknown): string | undefined {
  const pending: { value: unknown; depth: number }[] = [{ value: root, depth: 1 }];
  for (let item = pending.pop(); item; item = pending.pop()) {
    const { value, depth } = item;
    if (typeof value === 'string') {
      if (!NO_NUL.test(value)) return NUL_MESSAGE;
      continue;
    }
    if (!value || typeof value !== 'object') continue;
    if (depth > METADATA_MAX_DEPTH) return `must be nested at most ${METADATA_MAX_DEPTH} levels deep`;
    for (const [key, child] of Object.entries(value)) {
      if (!NO_NUL.test(key)) return NUL_MESSAGE;
      pending.push({ value: child, depth: depth + 1 });
    }
  }
  return undefined;
}

/** A JSON object (not an array or scalar), small enough to keep rows lean. */
export const metadataObject = z
  .record(z.string(), z.unknown(), 'must be a JSON object')
  // Aborts on failure: the size check below would recurse through whatever is this deep.
  .refine((value) => jsonProblem(value) === undefined, { abort: true, error: (issue) => jsonProblem(issue.input) })
  .refine((value) => Buffer.byteLength(JSON.stringify(value)) <= METADATA_MAX_BYTES, {
    message: `must be at most ${METADATA_MAX_BYTES} bytes of JSON`,
  });

/** Years PostgreSQL's timestamptz and JavaScript's Date both hold, with room to spare. */
export const DATE_RANGE = { min: new Date('0001-01-01T00:00:00Z'), max: new Date('9999-12-31T23:59:59.999Z') };
export const isStorableDate = (date: Date) => date >= DATE_RANGE.min && date <= DATE_RANGE.max;
export const DATE_RANGE_MESSAGE = 'must be between 0001-01-01 and 9999-12-31';
