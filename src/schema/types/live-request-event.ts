/** LiveRequestEvent: the change a live update reports (ContentRequestUpdate.event), as the live layer carries it. */
import type { LiveEvent } from '../../services/live-events.js';
import { builder } from '../builder.js';
import { EventTypeEnum, RequestStatusEnum } from '../enums.js';

export const LiveRequestEventRef = builder.objectRef<LiveEvent>('LiveRequestEvent').implement({
  description: 'The change a live update reports: one row of the request’s event log.',
  fields: (t) => ({
    id: t.field({ type: 'BigInt', resolve: (event) => BigInt(event.eventId) }),
    sequence: t.field({ type: 'BigInt', resolve: (event) => event.sequence }),
    eventType: t.expose('eventType', { type: EventTypeEnum }),
    oldStatus: t.expose('oldStatus', { type: RequestStatusEnum, nullable: true }),
    newStatus: t.expose('newStatus', { type: RequestStatusEnum }),
    stage: t.exposeString('stage', { nullable: true }),
    progressPercentage: t.exposeInt('progress'),
    createdAt: t.field({ type: 'DateTime', resolve: (event) => event.createdAt }),
  }),
});
