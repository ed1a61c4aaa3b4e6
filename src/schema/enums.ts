/** Database enums as GraphQL enums (UPPER_CASE names, the database's values inside); kept together, as several types in types/ share them. */
import { contentStageStatus, eventSeverity, requestEventType, userRoles } from '../db/tables.js';
import type { RequestStatus } from '../services/pipeline.js';
import { builder } from './builder.js';

function upperCaseEnum<const T extends string>(name: string, values: readonly T[], description: string) {
  return builder.enumType(name, {
    description,
    values: Object.fromEntries(values.map((value) => [value.toUpperCase(), { value }])) as Record<
      Uppercase<T>,
      { value: T }
    >,
  });
}

const defineRequestStatusEnum = (statuses: readonly RequestStatus[]) =>
  upperCaseEnum(
    'ContentRequestStatus',
    statuses,
    'Where a request stands: PENDING, one status per pipeline stage, then COMPLETED, FAILED or CANCELLED.',
  );

/**
 * The database's content_request_status values, which a migration may extend:
 * defined by implementRequestStatusEnum before the schema is built (the
 * fields that use it are thunks, read only then).
 */
export let RequestStatusEnum: ReturnType<typeof defineRequestStatusEnum>;

export function implementRequestStatusEnum(statuses: readonly RequestStatus[]): void {
  RequestStatusEnum = defineRequestStatusEnum(statuses);
}
export const StageStatusEnum = upperCaseEnum('StageStatus', contentStageStatus.enumValues, 'A pipeline stage’s state for one request.');
export const EventTypeEnum = upperCaseEnum('RequestEventType', requestEventType.enumValues, 'What an event records.');
export const SeverityEnum = upperCaseEnum('EventSeverity', eventSeverity.enumValues, 'How much an event matters.');
export const RoleEnum = upperCaseEnum('Role', userRoles, 'What a user may do: a student reaches their own requests, an org admin their organization’s, an admin and a worker everything; only workers and admins report stages.');
