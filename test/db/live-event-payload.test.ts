/**
 * The notified form's reader (parseLiveEventNotification): what it accepts
 * and gives back, and that every field's rule refuses what breaks it, with
 * the field named. No database: the trigger's real payloads are
 * live-events.test.ts's.
 */
import { expect, test } from 'vitest';
import { parseLiveEventNotification } from '../../src/services/live-events.js';

const valid = {
  requestId: '3F1C2D9E-8a4b-4c1d-9e2f-000000000012',
  eventId: '123456',
  position: '9007199254740993',
  sequence: 7,
  eventType: 'progress',
  oldStatus: 'script_generation',
  newStatus: 'script_generation',
  stage: 'script_generation',
  progress: 42,
  studentId: 'student-1',
  organizationId: 'org-1',
  // As the trigger renders a timestamptz: microseconds, the session's offset.
  createdAt: '2026-11-29T13:00:00.123956+01:00',
};

test('a payload of the trigger’s shape is read as its live event; fields it does not know are left out', () => {
  expect(parseLiveEventNotification(JSON.stringify({ ...valid, extra: 'ignored' }))).toEqual({
    ...valid,
    position: 9007199254740993n,
    createdAt: '2026-11-29T12:00:00.123Z',
  });
  const first = parseLiveEventNotification(JSON.stringify({ ...valid, oldStatus: null, stage: null, organizationId: null, sequence: 1, progress: 0, eventType: 'created' }));
  expect(first).toMatchObject({ oldStatus: null, stage: null, organizationId: null, sequence: 1, progress: 0, eventType: 'created' });
  expect(parseLiveEventNotification(JSON.stringify({ ...valid, progress: 100, createdAt: '2026-11-29T12:00:00Z' }))).toMatchObject({
    progress: 100,
    createdAt: '2026-11-29T12:00:00.000Z',
  });
});

const broken: [field: string, value: unknown][] = [
  ['requestId', 'not-a-uuid'],
  ['requestId', 12],
  ['eventId', '12a'],
  ['eventId', 12],
  ['position', '-1'],
  ['position', ''],
  ['sequence', 0],
  ['sequence', 1.5],
  ['sequence', '7'],
  ['eventType', 'progress_updated'],
  ['oldStatus', ''],
  ['oldStatus', 3],
  ['newStatus', null],
  ['newStatus', ''],
  ['stage', 5],
  ['progress', 101],
  ['progress', -1],
  ['progress', 4.5],
  ['progress', 'ten'],
  ['studentId', null],
  ['organizationId', 7],
  ['createdAt', 'yesterday'],
  ['createdAt', 1732881600000],
];

test.each(broken)('%s = %j is refused', (field, value) => {
  expect(() => parseLiveEventNotification(JSON.stringify({ ...valid, [field]: value }))).toThrow(field);
});

test('a missing field, and anything but a JSON object, is refused', () => {
  for (const field of Object.keys(valid)) {
    const { [field]: _left, ...rest } = valid as Record<string, unknown>;
    expect(() => parseLiveEventNotification(JSON.stringify(rest)), field).toThrow(field);
  }
  for (const payload of ['not json', 'null', '[]', '"text"', '42']) {
    expect(() => parseLiveEventNotification(payload), payload).toThrow();
  }
});
