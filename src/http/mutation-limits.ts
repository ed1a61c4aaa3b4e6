/**
 * The per-user mutation budget (services/limits.ts), checked once per
 * operation before anything runs: every mutation field counts, so aliases
 * cannot multiply it. Queries and subscriptions are not counted here.
 */
import { getOperationAST, Kind, type DocumentNode, type SelectionSetNode } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import type { GraphQLContext } from '../schema/context.js';
import { ServiceError } from '../services/errors.js';
import type { MutationLimiter } from '../services/limits.js';
import { toCodedError } from './error-responses.js';

export function useMutationLimits(limiter: MutationLimiter): Plugin<GraphQLContext> {
  return {
    onExecute: async ({ args, setResultAndStopExecution }) => {
      const viewer = args.contextValue.viewer;
      const operation = getOperationAST(args.document, args.operationName);
      // Without a viewer the mutation is refused as UNAUTHENTICATED anyway.
      if (!viewer || operation?.operation !== 'mutation') return;
      try {
        await limiter.consume(viewer, rootFieldCount(args.document, operation.selectionSet));
      } catch (error) {
        if (!(error instanceof ServiceError)) throw error;
        setResultAndStopExecution({ errors: [toCodedError(error)] });
      }
    },
  };
}

/** Root fields, through fragments (which validation has already checked exist); one left out by @skip/@include still counts, so the budget errs toward charging. */
function rootFieldCount(document: DocumentNode, selectionSet: SelectionSetNode, seen = new Set<string>()): number {
  let count = 0;
  for (const selection of selectionSet.selections) {
    if (selection.kind === Kind.FIELD) {
      if (selection.name.value !== '__typename') count += 1;
    } else if (selection.kind === Kind.INLINE_FRAGMENT) {
      count += rootFieldCount(document, selection.selectionSet, seen);
    } else if (!seen.has(selection.name.value)) {
      seen.add(selection.name.value);
      const fragment = document.definitions.find(
        (definition) => definition.kind === Kind.FRAGMENT_DEFINITION && definition.name.value === selection.name.value,
      );
      if (fragment?.kind === Kind.FRAGMENT_DEFINITION) count += rootFieldCount(document, fragment.selectionSet, seen);
    }
  }
  return count;
}
