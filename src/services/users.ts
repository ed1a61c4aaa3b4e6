/**
 * Users and organizations. A valid token is the authority on who someone is:
 * its user (and organization) are created on first use. The stored row is a
 * record, not the authority: with two live tokens for one user it holds
 * whichever this process provisioned first, so what a request needs from the
 * caller (their organization) comes from the token itself (requests.ts).
 */
import { inArray, sql } from 'drizzle-orm';
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

/**
 * The viewer's organization and user row in one statement (one round trip on a
 * viewer's first request): the organization's insert is a CTE, and the
 * foreign key is checked at the statement's end, after it.
 */
export async function provisionViewer(db: Queryable, viewer: Viewer): Promise<void> {
  const organizationId = viewer.organizationId;
  await db.execute(sql`
    with organization as (
      insert into ${organizations} (${sql.identifier(organizations.organizationId.name)}, ${sql.identifier(organizations.name.name)})
      select ${organizationId}::varchar, ${organizationId}::varchar where ${organizationId}::varchar is not null
      on conflict do nothing
    )
    insert into ${users} (${sql.identifier(users.userId.name)}, ${sql.identifier(users.role.name)}, ${sql.identifier(users.organizationId.name)})
    values (${viewer.userId}, ${viewer.role}, ${organizationId})
    on conflict (${sql.identifier(users.userId.name)}) do update
      set ${sql.identifier(users.role.name)} = excluded.role, ${sql.identifier(users.organizationId.name)} = excluded.organization_id
      -- Only when something changed: no needless row versions or updated_at churn.
      where ${users.role} is distinct from excluded.role or ${users.organizationId} is distinct from excluded.organization_id`);
}

export async function usersByIds(db: Queryable, ids: readonly string[]): Promise<User[]> {
  if (ids.length === 0) return [];
  return db.select().from(users).where(inArray(users.userId, [...ids]));
}

export async function organizationsByIds(db: Queryable, ids: readonly string[]): Promise<Organization[]> {
  if (ids.length === 0) return [];
  return db.select().from(organizations).where(inArray(organizations.organizationId, [...ids]));
}
