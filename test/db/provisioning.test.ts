/**
 * provisionViewer (src/services/users.ts): a token's user and organization are
 * created on first use and follow the token's role and organization, and a
 * user already stored as the token says is left untouched: no row lock, no
 * transaction id, so a viewer's first read stays a read.
 */
import { eq, sql } from 'drizzle-orm';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { organizations, users } from '../../src/db/tables.js';
import type { Viewer } from '../../src/services/access.js';
import { provisionViewer } from '../../src/services/users.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';

let t: TestDatabase;
beforeAll(async () => {
  t = await createTestDatabase();
});
afterAll(() => t.close());

/** Provisions inside a transaction (rolled back or not) and says whether it was given a transaction id. */
async function provisionWrote(viewer: Viewer): Promise<boolean> {
  return t.database.db.transaction(async (tx) => {
    await provisionViewer(tx, viewer);
    const [row] = (await tx.execute(sql`select txid_current_if_assigned() as xid`)).rows as { xid: string | null }[];
    return row!.xid !== null;
  });
}

const stored = async (userId: string) => (await t.database.db.select().from(users).where(eq(users.userId, userId)))[0];

test('the first use creates the organization and the user; using the same claims again writes nothing', async () => {
  const viewer: Viewer = { userId: 'provisioned-student', role: 'student', organizationId: 'provisioned-org' };
  expect(await provisionWrote(viewer)).toBe(true);
  expect(await stored('provisioned-student')).toMatchObject({ role: 'student', organizationId: 'provisioned-org' });
  const [organization] = await t.database.db.select().from(organizations).where(eq(organizations.organizationId, 'provisioned-org'));
  expect(organization?.name).toBe('provisioned-org');

  expect(await provisionWrote(viewer)).toBe(false);
});

test('a token with another role or organization updates the row; without an organization, clears it', async () => {
  const userId = 'provisioned-mover';
  await provisionWrote({ userId, role: 'student', organizationId: 'provisioned-org-a' });
  expect(await provisionWrote({ userId, role: 'org_admin', organizationId: 'provisioned-org-b' })).toBe(true);
  expect(await stored(userId)).toMatchObject({ role: 'org_admin', organizationId: 'provisioned-org-b' });
  expect(await provisionWrote({ userId, role: 'admin', organizationId: null })).toBe(true);
  expect(await stored(userId)).toMatchObject({ role: 'admin', organizationId: null });
  expect(await provisionWrote({ userId, role: 'admin', organizationId: null })).toBe(false);
});
