/** The stalledRequests query: requests in flight with a stage found stalled (services/stalls.ts). */
import { listStalledRequests } from '../../services/stalls.js';
import { builder } from '../builder.js';
import { requireViewer } from '../context.js';
import { ContentRequestRef } from './content-request.js';

builder.queryFields((t) => ({
  stalledRequests: t.field({
    type: [ContentRequestRef],
    description:
      'Requests in flight whose running stage has run past STALL_FACTOR times its expected duration, oldest first: every one for admins, their organization’s for org admins. A request leaves the list when the stage progresses, completes or fails.',
    args: { first: t.arg.int({ required: false, description: 'At most 1000; 100 by default.' }) },
    resolve: (_root, args, ctx) => listStalledRequests(ctx.db, requireViewer(ctx), args),
  }),
}));
