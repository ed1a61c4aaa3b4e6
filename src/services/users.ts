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
  // A remembered token's viewer is one object for as long as it is remembered (http/auth.ts):
  // found here, a request builds no key (which showed in a request's CPU profile).
  private readonly seenViewers = new WeakSet<Viewer>();
  constructor(private readonly capacity = 10_000) {}

  async ensure(db: Queryable, viewer: Viewer): Promise<void> {
    if (this.seenViewers.has(viewer)) return;
    const key = JSON.stringify([viewer.userId, viewer.role, viewer.organizationId]);
    if (!this.seen.has(key)) {
      await provisionViewer(db, viewer);
      if (this.seen.size >= this.capacity) this.seen.delete(this.seen.values().next().value!);
      this.seen.add(key);
    }
    this.seenViewers.add(viewer);
  }
}

/**
 * The viewer's organization and user row in one statement (one round trip on a
 * viewer's first request): the organization's insert is a CTE, and the
 * foreign key is checked at the statement's end, after it. A user row already
 * as the token says is not touched at all: ON CONFLICT DO UPDATE locks the
 * row even when its WHERE is false, which makes a read a write transaction
 * (a transaction id, WAL, a commit that waits for the flush).
 */
export async function provisionViewer(db: Queryable, viewer: Viewer): Promise<void> {
  const { userId, role, organizationId } = viewer;
  const column = (c: { name: string }) => sql.identifier(c.name);
  await db.execute(sql`
    with organization as (
      insert into ${organizations} (${column(organizations.organizationId)}, ${column(organizations.name)})
      select ${organizationId}::varchar, ${organizationId}::varchar where ${organizationId}::varchar is not null
      on conflict do nothing
    )
    insert into ${users} (${column(users.userId)}, ${column(users.role)}, ${column(users.organizationId)})
    select ${userId}::varchar, ${role}::varchar, ${organizationId}::varchar
    where not exists (
      select from ${users}
      where ${users.userId} = ${userId} and ${users.role} = ${role} and ${users.organizationId} is not distinct from ${organizationId}::varchar
    )
    on conflict (${column(users.userId)}) do update
      set ${column(users.role)} = excluded.role, ${column(users.organizationId)} = excluded.organization_id
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
