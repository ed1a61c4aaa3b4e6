/** The custom scalars the types use (DateTime, BigInt, JSON), with the checks on their input. */
import { GraphQLError, Kind, type ValueNode } from 'graphql';
import { DATE_RANGE_MESSAGE, isStorableDate } from '../services/validation.js';
import { builder } from './builder.js';

const badScalar = (message: string) => new GraphQLError(message, { extensions: { code: 'BAD_USER_INPUT' } });

// toISOString's own form: a live event's instants arrive as such text (services/live-events.ts),
// and parsing it into a Date to print it again was a few per cent of the service's CPU a change.
const ISO_UTC = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

builder.scalarType('DateTime', {
  description: 'An instant, as an ISO 8601 string with a time zone (2026-11-24T10:15:00.000Z).',
  serialize: (value) =>
    value instanceof Date ? value.toISOString() : typeof value === 'string' && ISO_UTC.test(value) ? value : new Date(value).toISOString(),
  parseValue: (value) => {
    const date = typeof value === 'string' && /[zZ]|[+-]\d\d:?\d\d$/.test(value) ? new Date(value) : null;
    if (!date || Number.isNaN(date.getTime())) {
      throw badScalar('DateTime: expected an ISO 8601 string with a time zone, e.g. 2026-11-24T10:15:00Z');
    }
    // Year 0, or ±275760 (JavaScript's limits), would fail in PostgreSQL instead.
    if (!isStorableDate(date)) throw badScalar(`DateTime: ${DATE_RANGE_MESSAGE}`);
    return date;
  },
});

builder.scalarType('BigInt', {
  description: 'A 64-bit integer, as a decimal string so no client rounds it.',
  serialize: (value) => value.toString(),
  parseValue: (value) => {
    if ((typeof value === 'string' && /^\d{1,19}$/.test(value)) || (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0)) {
      return BigInt(value);
    }
    throw badScalar('BigInt: expected a non-negative integer, as a string of digits');
  },
});

builder.scalarType('JSON', {
  description: 'Any JSON value.',
  serialize: (value) => value,
  parseValue: (value) => value,
  parseLiteral: function parseLiteral(ast: ValueNode): unknown {
    switch (ast.kind) {
      case Kind.STRING:
      case Kind.BOOLEAN:
        return ast.value;
      case Kind.INT:
      case Kind.FLOAT:
        return Number(ast.value);
      case Kind.NULL:
        return null;
      case Kind.LIST:
        return ast.values.map((v) => parseLiteral(v));
      case Kind.OBJECT:
        return Object.fromEntries(ast.fields.map((f) => [f.name.value, parseLiteral(f.value)]));
      default:
        throw badScalar('JSON: variables are not allowed inside a JSON literal; pass the whole value as a variable');
    }
  },
});
