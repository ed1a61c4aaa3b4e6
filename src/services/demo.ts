/** The embedded mode's demo organization and users, one per role. */
import type { Queryable } from '../db/client.js';
import { organizations, users } from '../db/tables.js';
import type { Role } from './access.js';

export const DEMO_ORGANIZATION = { organizationId: 'demo-school', name: 'Demo School', domain: 'demo-school.example' };

export type DemoUser = { userId: string; name: string; role: Role; organizationId: string | null };

export const DEMO_USERS: DemoUser[] = [
  { userId: 'demo-student', name: 'Ada (student)', role: 'student', organizationId: 'demo-school' },
  { userId: 'demo-student-2', name: 'Grace (student)', role: 'student', organizationId: 'demo-school' },
  { userId: 'demo-org-admin', name: 'Olive (org admin)', role: 'org_admin', organizationId: 'demo-school' },
  { userId: 'demo-admin', name: 'Alan (platform admin)', role: 'admin', organizationId: null },
  { userId: 'demo-worker', name: 'Pipeline worker', role: 'worker', organizationId: null },
];

/** Idempotent: a restart keeps whatever the demo users did. */
export async function seedDemoData(db: Queryable): Promise<DemoUser[]> {
  await db.insert(organizations).values(DEMO_ORGANIZATION).onConflictDoNothing();
  await db
    .insert(users)
    .values(DEMO_USERS.map((user) => ({ ...user, email: `${user.userId}@demo-school.example` })))
    .onConflictDoNothing();
  return DEMO_USERS;
}
