/**
 * Who is asking, and what they may reach (docs/access.md). Every decision that
 * depends on the viewer's role lives here, once, for queries, mutations and
 * subscriptions alike. Each rule is an exhaustive switch over the roles, so a
 * role added to `userRoles` fails the type check here until every rule has
 * decided for it.
 */
import { and, eq, sql, type SQL } from 'drizzle-orm';
import type { AnyPgColumn } from 'drizzle-orm/pg-core';
import { contentRequests, userRoles } from '../db/tables.js';
import { assertNever } from './assert-never.js';
import { ServiceError } from './errors.js';

export type Role = (typeof userRoles)[number];
export { userRoles };

export type Viewer = {
  userId: string;
  role: Role;
  organizationId: string | null;
};

// ---------------------------------------------------------------------------
// Reading requests

type RequestOwnership = { studentId: string; organizationId: string | null };

/**
 * Requests the viewer may read. Workers run the pipeline for every request,
 * so they read them all, as admins do.
 */
export function canSeeRequest(viewer: Viewer, request: RequestOwnership): boolean {
  const { role } = viewer;
  switch (role) {
    case 'admin':
    case 'worker':
      return true;
    case 'org_admin':
      return viewer.organizationId !== null && request.organizationId === viewer.organizationId;
    case 'student':
      return request.studentId === viewer.userId;
    default:
      return assertNever(role);
  }
}

type OwnershipColumns = { studentId: AnyPgColumn; organizationId: AnyPgColumn };

/**
 * The same rule as a SQL condition, on content_requests or on anything with
 * the same two columns (a view). Always a condition (`true` for everything),
 * so forgetting a role can never read as "no restriction".
 */
export function requestScope(viewer: Viewer, columns: OwnershipColumns = contentRequests): SQL {
  const { role } = viewer;
  switch (role) {
    case 'admin':
    case 'worker':
      return sql`true`;
    case 'org_admin':
      return viewer.organizationId === null ? sql`false` : eq(columns.organizationId, viewer.organizationId);
    case 'student':
      return eq(columns.studentId, viewer.userId);
    default:
      return assertNever(role);
  }
}

export function withinScope(viewer: Viewer, ...conditions: (SQL | undefined)[]): SQL | undefined {
  return and(requestScope(viewer), ...conditions);
}

// ---------------------------------------------------------------------------
// Submitting

/** Refuses, before any lookup, a student submitting for someone else. */
export function assertMaySubmitFor(viewer: Viewer, studentId: string): void {
  const { role } = viewer;
  switch (role) {
    case 'admin':
    case 'worker':
    case 'org_admin':
      return;
    case 'student':
      if (studentId !== viewer.userId) {
        throw new ServiceError('FORBIDDEN', 'a student can submit requests only for themselves');
      }
      return;
    default:
      return assertNever(role);
  }
}

/**
 * Students submit for themselves; org admins for their organization's
 * students; admins and workers for anyone.
 */
export function canSubmitFor(viewer: Viewer, student: { userId: string; organizationId: string | null }): boolean {
  const { role } = viewer;
  switch (role) {
    case 'admin':
    case 'worker':
      return true;
    case 'org_admin':
      return viewer.organizationId !== null && student.organizationId === viewer.organizationId;
    case 'student':
      return student.userId === viewer.userId;
    default:
      return assertNever(role);
  }
}

/**
 * Whose namespace a caller's idempotency key lives in. Workers and admins keep
 * global keys: the original system's worker checks idempotency by correlation
 * id. Everyone else's key is theirs alone, so it can neither reveal nor block
 * another's request.
 */
export function idempotencyKeyScope(viewer: Viewer): 'global' | 'user' {
  const { role } = viewer;
  switch (role) {
    case 'admin':
    case 'worker':
      return 'global';
    case 'org_admin':
    case 'student':
      return 'user';
    default:
      return assertNever(role);
  }
}

/**
 * Who the per-user mutation limit leaves out: the system's own volume (a
 * worker reports every stage of every request) and admins fixing it by hand.
 */
export function isExemptFromMutationLimit(viewer: Viewer): boolean {
  const { role } = viewer;
  switch (role) {
    case 'admin':
    case 'worker':
      return true;
    case 'org_admin':
    case 'student':
      return false;
    default:
      return assertNever(role);
  }
}

/** Only the pipeline (and admins fixing it by hand) report stage progress. */
export function assertCanReportStages(viewer: Viewer): void {
  const { role } = viewer;
  switch (role) {
    case 'admin':
    case 'worker':
      return;
    case 'org_admin':
    case 'student':
      throw new ServiceError('FORBIDDEN', `reporting stages needs the worker or admin role, not ${role}`);
    default:
      return assertNever(role);
  }
}

// ---------------------------------------------------------------------------
// The live feed and analytics

/** The narrowest set of requests whose live events hold everything a viewer's feed may show. */
export type FeedSource =
  | { kind: 'all' }
  | { kind: 'organization'; organizationId: string }
  | { kind: 'student'; studentId: string };

/**
 * Which events a viewer's feed listens to. Students and org admins get their
 * own, whatever they filter on (the filter narrows further, per event); the
 * others the narrowest source their filter allows.
 */
export function feedSource(
  viewer: Viewer,
  filter: { studentId?: string | null; organizationId?: string | null },
): FeedSource {
  const { role } = viewer;
  switch (role) {
    case 'student':
      return { kind: 'student', studentId: viewer.userId };
    case 'org_admin':
      if (!viewer.organizationId) throw new ServiceError('FORBIDDEN', 'an org admin without an organization has no feed');
      return { kind: 'organization', organizationId: viewer.organizationId };
    case 'admin':
    case 'worker':
      if (filter.studentId) return { kind: 'student', studentId: filter.studentId };
      if (filter.organizationId) return { kind: 'organization', organizationId: filter.organizationId };
      return { kind: 'all' };
    default:
      return assertNever(role);
  }
}

/**
 * Which organization's request metrics the viewer reads (null: every
 * organization's): admins any they ask for, org admins their own (by
 * default too); anyone else is refused.
 */
export function metricsOrganization(viewer: Viewer, requested: string | null): string | null {
  const { role } = viewer;
  const refused = new ServiceError(
    'FORBIDDEN',
    'request metrics are for admins, and org admins of their own organization',
  );
  switch (role) {
    case 'admin':
      return requested;
    case 'org_admin': {
      const organizationId = requested ?? viewer.organizationId;
      if (organizationId === null || organizationId !== viewer.organizationId) throw refused;
      return organizationId;
    }
    case 'worker':
    case 'student':
      throw refused;
    default:
      return assertNever(role);
  }
}

/**
 * Which requests the stalled list shows: admins every one, org admins their
 * organization's. It is an operator's list, so students and workers (who
 * report stages and do not watch them) are refused.
 */
export function stalledRequestsScope(viewer: Viewer): SQL {
  const { role } = viewer;
  switch (role) {
    case 'admin':
      return sql`true`;
    case 'org_admin':
      if (viewer.organizationId === null) throw new ServiceError('FORBIDDEN', 'an org admin without an organization has no stalled list');
      return eq(contentRequests.organizationId, viewer.organizationId);
    case 'worker':
    case 'student':
      throw new ServiceError('FORBIDDEN', 'the stalled list is for admins, and org admins of their own organization');
    default:
      return assertNever(role);
  }
}
