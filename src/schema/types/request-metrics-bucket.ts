/** RequestMetricsBucket (one hour of one organization, a row of the request_metrics table), and the `requestMetrics` query. */
import { listRequestMetrics, type MetricsBucket } from '../../services/monitoring.js';
import { builder } from '../builder.js';
import { requireViewer } from '../context.js';

export const RequestMetricsBucketRef = builder.objectRef<MetricsBucket>('RequestMetricsBucket').implement({
  description: 'One hour of one organization’s requests (by creation time), from request_metrics.',
  fields: (t) => ({
    hour: t.expose('metricHour', { type: 'DateTime' }),
    organizationId: t.exposeID('organizationId', { nullable: true }),
    totalRequests: t.exposeInt('totalRequests'),
    completedRequests: t.exposeInt('completedRequests'),
    failedRequests: t.exposeInt('failedRequests'),
    cancelledRequests: t.exposeInt('cancelledRequests'),
    successRate: t.exposeFloat('successRate', { nullable: true, description: 'Percent, 0-100.' }),
    failureRate: t.exposeFloat('failureRate', { nullable: true, description: 'Percent, 0-100.' }),
    avgDurationSeconds: t.exposeFloat('avgDurationSeconds', { nullable: true }),
    p95DurationSeconds: t.exposeFloat('p95DurationSeconds', { nullable: true }),
    errorBreakdown: t.expose('errorBreakdown', { type: 'JSON', description: 'Failures by stage: { stage: count }.' }),
  }),
});

builder.queryFields((t) => ({
  requestMetrics: t.field({
    type: [RequestMetricsBucketRef],
    description: 'Hourly buckets in [from, to), oldest first (the last 24 hours by default). Admins: any organization, or all; org admins: their own.',
    args: {
      organizationId: t.arg.id({ required: false }),
      from: t.arg({ type: 'DateTime', required: false }),
      to: t.arg({ type: 'DateTime', required: false }),
    },
    resolve: (_root, args, ctx) =>
      listRequestMetrics(ctx.db, requireViewer(ctx), { ...args, organizationId: args.organizationId?.toString() }),
  }),
}));
