/**
 * Ages requests for retention tests: moves their last change (updated_at)
 * `days` back, as if nothing had touched them since. The trigger that stamps
 * updated_at is paused for that one transaction, on the test's own database.
 */
import { inArray, sql } from 'drizzle-orm';
import type { Db } from '../../src/db/client.js';
import { contentRequests } from '../../src/db/tables.js';

export async function ageRequests(db: Db, ids: string[], days: number): Promise<void> {
  await db.transaction(async (tx) => {
    await tx.execute(sql`alter table content_requests disable trigger set_updated_at`);
    await tx
      .update(contentRequests)
      .set({ updatedAt: sql`now() - make_interval(days => ${days})` })
      .where(inArray(contentRequests.id, ids));
    await tx.execute(sql`alter table content_requests enable trigger set_updated_at`);
  });
}
