/** LiveRequestEvent: the change a live update reports (ContentRequestUpdate.event), as the live layer carries it. */
import { SAME_FOR_EVERY_VIEWER } from '../../live/shared-results.js';
import type { LiveEvent } from '../../services/live-events.js';
import { builder } from '../builder.js';
import { EventTypeEnum, RequestStatusEnum } from '../enums.js';

// Every field is the event's own, the same for every viewer: subscribers of one event share their execution (live/shared-results.ts).
const sameForEveryViewer = { extensions: { [SAME_FOR_EVERY_VIEWER]: true } };

export const LiveRequestEventRef = builder.objectRef<LiveEvent>('LiveRequestEvent').implement({
  description: 'The change a live update reports: one row of the request’s event log.',
  fields: (t) => ({
    id: t.field({ type: 'BigInt', resolve: (event) => BigInt(event.eventId), ...sameForEveryViewer }),
    sequence: t.field({ type: 'BigInt', resolve: (event) => event.sequence, ...sameForEveryViewer }),
    eventType: t.expose('eventType', { type: EventTypeEnum, ...sameForEveryViewer }),
    oldStatus: t.expose('oldStatus', { type: RequestStatusEnum, nullable: true, ...sameForEveryViewer }),
    newStatus: t.expose('newStatus', { type: RequestStatusEnum, ...sameForEveryViewer }),
    stage: t.exposeString('stage', { nullable: true, ...sameForEveryViewer }),
    progressPercentage: t.exposeInt('progress', sameForEveryViewer),
    createdAt: t.field({ type: 'DateTime', resolve: (event) => event.createdAt, ...sameForEveryViewer }),
  }),
});
