/** Builds the GraphQL schema from the Pothos type files (imported for their side effect). */
import { lexicographicSortSchema, printSchema, type GraphQLSchema } from 'graphql';
import type { RequestStatus } from '../services/pipeline.js';
import { builder } from './builder.js';
import './scalars.js';
import { implementRequestStatusEnum } from './enums.js';
import './types/root.js';
import './types/organization.js';
import './types/user.js';
import './types/pipeline-stage.js';
import './types/request-stage.js';
import './types/request-event.js';
import './types/content-request.js';
import './types/active-request.js';
import './types/stalled-requests.js';
import './types/request-metrics-bucket.js';
import './types/live-request-event.js';
import './types/content-request-update.js';

let built: { statuses: string; schema: GraphQLSchema } | undefined;

/**
 * The schema, with ContentRequestStatus holding the database's statuses
 * (services/pipeline.ts requestStatuses). Pothos builds one set of types per
 * process, so every call must pass the same statuses.
 */
export function buildSchema(statuses: readonly RequestStatus[]): GraphQLSchema {
  const key = statuses.join(',');
  if (!built) {
    implementRequestStatusEnum(statuses);
    built = { statuses: key, schema: builder.toSchema() };
  } else if (built.statuses !== key) {
    throw new Error(`the schema was built with the statuses ${built.statuses}; this database has ${key}`);
  }
  return built.schema;
}

/** The SDL committed as schema.graphql; sorted so the diff shows real changes only. */
export function printSchemaSdl(statuses: readonly RequestStatus[]): string {
  return `${printSchema(lexicographicSortSchema(buildSchema(statuses)))}\n`;
}
