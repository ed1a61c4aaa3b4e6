/** Database enums as GraphQL enums (UPPER_CASE names, the database's values inside); kept together, as several types in types/ share them. */
import {
  contentRequestStatus,
  contentStageStatus,
  eventSeverity,
  requestEventType,
  userRoles,
} from '../db/tables.js';
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

export const RequestStatusEnum = upperCaseEnum(
  'ContentRequestStatus',
  contentRequestStatus.enumValues,
  'Where a request stands: PENDING, one status per pipeline stage, then COMPLETED, FAILED or CANCELLED.',
);
export const StageStatusEnum = upperCaseEnum('StageStatus', contentStageStatus.enumValues, 'A pipeline stage’s state for one request.');
export const EventTypeEnum = upperCaseEnum('RequestEventType', requestEventType.enumValues, 'What an event records.');
export const SeverityEnum = upperCaseEnum('EventSeverity', eventSeverity.enumValues, 'How much an event matters.');
export const RoleEnum = upperCaseEnum('Role', userRoles, 'What a user may do (DESIGN.md §7).');
