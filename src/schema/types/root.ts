/** The root operation types, empty here: the files in this folder add their queries, mutations and subscriptions. */
import { builder } from '../builder.js';

builder.queryType({});
builder.mutationType({});
builder.subscriptionType({});
