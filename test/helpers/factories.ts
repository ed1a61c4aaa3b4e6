/** Rows with deterministic defaults; override what a test cares about. */
import { eq } from 'drizzle-orm';
import type { Db } from '../../src/db/client.js';
import { contentRequests, organizations, users } from '../../src/db/tables.js';

let counter = 0;
const next = () => ++counter;

export async function insertOrganization(db: Db, overrides: Partial<typeof organizations.$inferInsert> = {}) {
  const n = next();
  const [row] = await db
    .insert(organizations)
    .values({ organizationId: `org-${n}`, name: `Organization ${n}`, ...overrides })
    .returning();
  return row!;
}

export async function insertUser(db: Db, overrides: Partial<typeof users.$inferInsert> = {}) {
  const n = next();
  const [row] = await db
    .insert(users)
    .values({ userId: `user-${n}`, name: `User ${n}`, email: `user-${n}@example.test`, ...overrides })
    .returning();
  return row!;
}

export async function insertRequest(db: Db, overrides: Partial<typeof contentRequests.$inferInsert> = {}) {
  const n = next();
  const studentId = overrides.studentId ?? (await insertUser(db)).userId;
  const [row] = await db
    .insert(contentRequests)
    .values({
      correlationId: `corr-${n}-${Date.now()}`,
      topic: 'Photosynthesis',
      studentQuery: 'Explain photosynthesis',
      gradeLevel: '8',
      ...overrides,
      studentId,
    })
    .returning();
  return row!;
}

export async function readRequest(db: Db, id: string) {
  const [row] = await db.select().from(contentRequests).where(eq(contentRequests.id, id));
  return row!;
}
