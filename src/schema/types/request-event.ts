/** RequestEvent: one row of a request's event log; paged through ContentRequest.events. */
import type { RequestEvent } from '../../services/events.js';
import { builder } from '../builder.js';
import { EventTypeEnum, RequestStatusEnum, SeverityEnum } from '../enums.js';

export const RequestEventRef = builder.objectRef<RequestEvent>('RequestEvent').implement({
  description: 'One entry of a request’s append-only log: every change of status, stage or progress.',
  fields: (t) => ({
    id: t.expose('id', { type: 'BigInt', description: 'Global, increasing with time of insertion (not of commit).' }),
    requestId: t.exposeID('requestId'),
    sequence: t.expose('sequence', { type: 'BigInt', description: '1, 2, 3 … per request, gap-free, in commit order.' }),
    eventType: t.expose('eventType', { type: EventTypeEnum }),
    oldStatus: t.expose('oldStatus', { type: RequestStatusEnum, nullable: true }),
    newStatus: t.expose('newStatus', { type: RequestStatusEnum }),
    stage: t.exposeString('stage', { nullable: true }),
    progressPercentage: t.exposeInt('progressPercentage'),
    severity: t.expose('severity', { type: SeverityEnum }),
    message: t.exposeString('message', { nullable: true }),
    metadata: t.expose('metadata', { type: 'JSON' }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
  }),
});
