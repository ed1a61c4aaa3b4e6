/**
 * Who is asking, and what they may reach (DESIGN.md §7). Every service call
 * takes a Viewer; the rules live here once, for queries, mutations and
 * subscriptions alike.
 */
import { and, eq, sql, type SQL } from 'drizzle-orm';
import type { AnyPgColumn } from 'drizzle-orm/pg-core';
import { contentRequests, userRoles } from '../db/tables.js';
import { ServiceError } from './errors.js';

export type Role = (typeof userRoles)[number];
export { userRoles };

export type Viewer = {
  userId: string;
  role: Role;
  organizationId: string | null;
};

type RequestOwnership = { studentId: string; organizationId: string | null };

/**
 * Requests the viewer may read. Workers run the pipeline for every request,
 * so they read them all, as admins do.
 */
export function canSeeRequest(viewer: Viewer, request: RequestOwnership): boolean {
  switch (viewer.role) {
    case 'admin':
    case 'worker':
      return true;
    case 'org_admin':
      return viewer.organizationId !== null && request.organizationId === viewer.organizationId;
    case 'student':
      return request.studentId === viewer.userId;
  }
}

type OwnershipColumns = { studentId: AnyPgColumn; organizationId: AnyPgColumn };

/**
 * The same rule as a SQL condition (undefined: no restriction), on
 * content_requests or on anything with the same two columns (a view).
 */
export function requestScope(
  viewer: Viewer,
  columns: OwnershipColumns = contentRequests,
): SQL | undefined {
  switch (viewer.role) {
    case 'admin':
    case 'worker':
      return undefined;
    case 'org_admin':
      return viewer.organizationId === null
        ? sql`false`
        : eq(columns.organizationId, viewer.organizationId);
    case 'student':
      return eq(columns.studentId, viewer.userId);
  }
}

export function withinScope(viewer: Viewer, ...conditions: (SQL | undefined)[]): SQL | undefined {
  return and(requestScope(viewer), ...conditions);
}

/** Only the pipeline (and admins fixing it by hand) report stage progress. */
export function assertCanReportStages(viewer: Viewer): void {
  if (viewer.role !== 'worker' && viewer.role !== 'admin') {
    throw new ServiceError('FORBIDDEN', `reporting stages needs the worker or admin role, not ${viewer.role}`);
  }
}

/** Organization analytics: admins for any organization, org admins for their own. */
export function assertCanReadMetrics(viewer: Viewer, organizationId: string | null): void {
  if (viewer.role === 'admin') return;
  if (viewer.role === 'org_admin' && organizationId !== null && organizationId === viewer.organizationId) return;
  throw new ServiceError('FORBIDDEN', 'request metrics are for admins, and org admins of their own organization');
}
