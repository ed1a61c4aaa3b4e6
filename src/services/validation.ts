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

/** Text that must have content, up to `max` characters (the column's size). */
export const requiredText = (max: number) =>
  z
    .string()
    .trim()
    .min(1, 'must not be empty')
    .max(max, `must be at most ${max} characters`);

export const optionalText = (max: number) =>
  z
    .string()
    .trim()
    .max(max, `must be at most ${max} characters`)
    .transform((value) => (value === '' ? null : value))
    .nullish();

export const uuid = z.string().regex(
  /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i,
  'must be a UUID such as 6f1c2a3e-8b4d-4c1a-9e2f-0a1b2c3d4e5f',
);

export const METADATA_MAX_BYTES = 16 * 1024;

/** A JSON object (not an array or scalar), small enough to keep rows lean. */
export const metadataObject = z
  .record(z.string(), z.unknown(), 'must be a JSON object')
  .refine((value) => Buffer.byteLength(JSON.stringify(value)) <= METADATA_MAX_BYTES, {
    message: `must be at most ${METADATA_MAX_BYTES} bytes of JSON`,
  });
