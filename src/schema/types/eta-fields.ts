/** estimatedCompletionAt and estimatedSecondsRemaining, on ContentRequest and on each live update alike. */
import type { Eta } from '../../services/eta.js';
import { builder } from '../builder.js';
import type { GraphQLContext } from '../context.js';

type Types = typeof builder extends PothosSchemaTypes.SchemaBuilder<infer T> ? T : never;

export function etaFields<Parent>(
  t: PothosSchemaTypes.ObjectFieldBuilder<Types, Parent>,
  etaOf: (parent: Parent, context: GraphQLContext) => Promise<Eta | null>,
  options: { extensions?: Record<string, unknown> } = {},
) {
  return {
    estimatedCompletionAt: t.field({
      ...options,
      type: 'DateTime',
      nullable: true,
      description:
        'When the request should be done, from how long each stage has recently taken (its organization’s history when it has enough) and how far the running stage is. Null once completed, failed or cancelled.',
      resolve: async (parent, _args, ctx) => (await etaOf(parent, ctx))?.completionAt ?? null,
    }),
    estimatedSecondsRemaining: t.int({
      ...options,
      nullable: true,
      description: 'Seconds from now until estimatedCompletionAt (at least a few while a stage runs). Null once completed, failed or cancelled.',
      resolve: async (parent, _args, ctx) => (await etaOf(parent, ctx))?.secondsRemaining ?? null,
    }),
  };
}
