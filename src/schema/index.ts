/** Builds the GraphQL schema from the Pothos type files (imported for their side effect). */
import { lexicographicSortSchema, printSchema, type GraphQLSchema } from 'graphql';
import { builder } from './builder.js';
import './scalars.js';
import './enums.js';
import './types/root.js';
import './types/organization.js';
import './types/user.js';
import './types/pipeline-stage.js';
import './types/request-stage.js';
import './types/request-event.js';
import './types/content-request.js';
import './types/active-request.js';
import './types/request-metrics-bucket.js';
import './types/live-request-event.js';
import './types/content-request-update.js';

let schema: GraphQLSchema | undefined;

export function buildSchema(): GraphQLSchema {
  schema ??= builder.toSchema();
  return schema;
}

/** The SDL committed as schema.graphql; sorted so the diff shows real changes only. */
export function printSchemaSdl(): string {
  return `${printSchema(lexicographicSortSchema(buildSchema()))}\n`;
}
