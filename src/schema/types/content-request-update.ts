/**
 * ContentRequestUpdate, one message of a live stream, and the two
 * subscriptions that send them: contentRequestProgress (one request) and
 * contentRequestUpdates (every request in the viewer's reach).
 */
import { SAME_FOR_EVERY_VIEWER } from '../../live/shared-results.js';
import { requestProgressStream, requestUpdatesStream, type Update } from '../../live/subscriptions.js';
import { eventEta } from '../../services/eta.js';
import { getRequest } from '../../services/requests.js';
import { builder } from '../builder.js';
import { requireViewer } from '../context.js';
import { RequestStatusEnum } from '../enums.js';
import { ContentRequestRef } from './content-request.js';
import { etaFields } from './eta-fields.js';
import { LiveRequestEventRef } from './live-request-event.js';

const UpdateKindEnum = builder.enumType('ContentRequestUpdateKind', {
  values: {
    SNAPSHOT: { value: 'snapshot', description: 'The request as it stood when you subscribed.' },
    EVENT: { value: 'event', description: 'A committed change.' },
  } as const,
});

// Fields whose value depends on the update alone: subscribers of one event share their execution (live/shared-results.ts).
const sameForEveryViewer = { extensions: { [SAME_FOR_EVERY_VIEWER]: true } };

const UpdateRef = builder.objectRef<Update>('ContentRequestUpdate').implement({
  description:
    'One message of a live subscription: the request’s state at that point, and the change that led to it (none for a snapshot).',
  fields: (t) => ({
    kind: t.field({ type: UpdateKindEnum, ...sameForEveryViewer, resolve: (update) => update.kind }),
    cursor: t.string({ ...sameForEveryViewer,
      description: 'Resume contentRequestUpdates after this message with `after: cursor`.',
      resolve: (update) => String(update.kind === 'event' ? update.event.position : update.position),
    }),
    requestId: t.id({ ...sameForEveryViewer, resolve: (update) => (update.kind === 'event' ? update.event.requestId : update.request.id) }),
    sequence: t.field({ ...sameForEveryViewer,
      type: 'BigInt',
      description: 'Resume contentRequestProgress after this message with `afterSequence: sequence`.',
      resolve: (update) => (update.kind === 'event' ? update.event.sequence : update.sequence),
    }),
    status: t.field({ ...sameForEveryViewer,
      type: RequestStatusEnum,
      resolve: (update) => (update.kind === 'event' ? update.event.newStatus : update.request.status),
    }),
    stage: t.string({ ...sameForEveryViewer,
      nullable: true,
      resolve: (update) => (update.kind === 'event' ? update.event.stage : update.request.currentStage),
    }),
    progressPercentage: t.int({ ...sameForEveryViewer,
      resolve: (update) => (update.kind === 'event' ? update.event.progress : update.request.progressPercentage),
    }),
    // As of delivery: the request's stages are read then, only when asked for, once per event for all its subscribers.
    ...etaFields(
      t,
      (update, ctx) => (update.kind === 'event' ? eventEta(ctx.db, update.event) : ctx.loaders.etas.load(update.request)),
      sameForEveryViewer,
    ),
    event: t.field({ ...sameForEveryViewer,
      type: LiveRequestEventRef,
      nullable: true,
      resolve: (update) => (update.kind === 'event' ? update.event : null),
    }),
    // Read as the subscriber may see it: never shared.
    request: t.field({
      type: ContentRequestRef,
      description: 'The whole request as it is now: one read per message, so ask for it only when you need more than the state above.',
      resolve: (update, _args, ctx) =>
        update.kind === 'snapshot' ? update.request : getRequest(ctx.db, requireViewer(ctx), update.event.requestId),
    }),
  }),
});

const UpdatesFilter = builder.inputType('ContentRequestUpdatesFilter', {
  fields: (t) => ({
    status: t.field({
      type: [RequestStatusEnum],
      required: false,
      description: 'Only changes into these statuses ([FAILED] is the failure feed); the opening snapshot lists requests now in them.',
    }),
    studentId: t.id({ required: false }),
    organizationId: t.id({ required: false }),
    stalled: t.boolean({
      required: false,
      description: 'true: only stalls: the opening snapshot lists requests now stalled (see stalledRequests), then each STAGE_STALLED event.',
    }),
  }),
});

builder.subscriptionFields((t) => ({
  contentRequestProgress: t.field({
    type: UpdateRef,
    description:
      'One request, live: first a SNAPSHOT (or, with afterSequence, every event after it), then every change in order. Ends when the request completes or is cancelled.',
    args: {
      id: t.arg.id({ required: true }),
      afterSequence: t.arg({ type: 'BigInt', required: false }),
    },
    subscribe: (_root, args, ctx) =>
      requestProgressStream(
        ctx.live,
        { viewer: requireViewer(ctx), expiresAt: ctx.viewerExpiresAt, hangUp: ctx.hangUp },
        String(args.id),
        args.afterSequence == null ? null : Number(args.afterSequence),
      ),
    resolve: (update) => update,
  }),

  contentRequestUpdates: t.field({
    type: UpdateRef,
    description:
      'Every request in your reach, live, in commit order: first a SNAPSHOT of each matching request (at most 100), or with `after` every change since that cursor; then every change.',
    args: {
      filter: t.arg({ type: UpdatesFilter, required: false }),
      after: t.arg.string({ required: false }),
    },
    subscribe: (_root, args, ctx) =>
      requestUpdatesStream(
        ctx.live,
        { viewer: requireViewer(ctx), expiresAt: ctx.viewerExpiresAt, hangUp: ctx.hangUp },
        {
          statuses: args.filter?.status ?? undefined,
          studentId: args.filter?.studentId?.toString(),
          organizationId: args.filter?.organizationId?.toString(),
          stalled: args.filter?.stalled ?? undefined,
        },
        args.after ?? null,
      ),
    resolve: (update) => update,
  }),
}));
