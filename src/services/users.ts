/**
 * Users and organizations. A valid token is the authority on who someone is:
 * its user (and organization) are created on first use. The stored row is a
 * record, not the authority: with two live tokens for one user it holds
 * whichever this process provisioned first, so what a request needs from the
 * caller (their organization) comes from the token itself (requests.ts).
 */
import { inArray, or, sql } from 'drizzle-orm';
import type { Queryable } from '../db/client.js';
import { organizations, users } from '../db/tables.js';
import type { Viewer } from './access.js';

export type User = typeof users.$inferSelect;
export type Organization = typeof organizations.$inferSelect;

/**
 * Remembers which (user, role, organization) triples are already stored, so a
 * steady stream of requests does not write on every call. Bounded: the oldest
 * entries go first.
 */
export class ProvisionedViewers {
  private readonly seen = new Set<string>();
  constructor(private readonly capacity = 10_000) {}

  async ensure(db: Queryable, viewer: Viewer): Promise<void> {
    const key = JSON.stringify([viewer.userId, viewer.role, viewer.organizationId]);
    if (this.seen.has(key)) return;
    await provisionViewer(db, viewer);
    if (this.seen.size >= this.capacity) this.seen.delete(this.seen.values().next().value!);
    this.seen.add(key);
  }
}

export async function provisionViewer(db: Queryable, viewer: Viewer): Promise<void> {
  if (viewer.organizationId) {
    await db
      .insert(organizations)
      .values({ organizationId: viewer.organizationId, name: viewer.organizationId })
      .onConflictDoNothing();
  }
  await db
    .insert(users)
    .values({ userId: viewer.userId, role: viewer.role, organizationId: viewer.organizationId })
    .onConflictDoUpdate({
      target: users.userId,
      set: { role: viewer.role, organizationId: viewer.organizationId },
      // Only when something changed: no needless row versions or updated_at churn.
      setWhere: or(
        sql`${users.role} is distinct from excluded.role`,
        sql`${users.organizationId} is distinct from excluded.organization_id`,
      ),
    });
}

export async function usersByIds(db: Queryable, ids: readonly string[]): Promise<User[]> {
  if (ids.length === 0) return [];
  return db.select().from(users).where(inArray(users.userId, [...ids]));
}

export async function organizationsByIds(db: Queryable, ids: readonly string[]): Promise<Organization[]> {
  if (ids.length === 0) return [];
  return db.select().from(organizations).where(inArray(organizations.organizationId, [...ids]));
}
