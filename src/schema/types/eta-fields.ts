/** estimatedCompletionAt and estimatedSecondsRemaining, on ContentRequest and on each live update alike. */
import type { EtaKey } from '../../services/loaders.js';
import { builder } from '../builder.js';

type Types = typeof builder extends PothosSchemaTypes.SchemaBuilder<infer T> ? T : never;

export function etaFields<Parent>(t: PothosSchemaTypes.ObjectFieldBuilder<Types, Parent>, requestOf: (parent: Parent) => EtaKey) {
  return {
    estimatedCompletionAt: t.field({
      type: 'DateTime',
      nullable: true,
      description:
        'When the request should be done, from how long each stage has recently taken (its organization’s history when it has enough) and how far the running stage is. Null once completed, failed or cancelled.',
      resolve: async (parent, _args, ctx) => (await ctx.loaders.etas.load(requestOf(parent)))?.completionAt ?? null,
    }),
    estimatedSecondsRemaining: t.int({
      nullable: true,
      description: 'Seconds from now until estimatedCompletionAt (at least a few while a stage runs). Null once completed, failed or cancelled.',
      resolve: async (parent, _args, ctx) => (await ctx.loaders.etas.load(requestOf(parent)))?.secondsRemaining ?? null,
    }),
  };
}
