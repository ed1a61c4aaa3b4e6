/**
 * Operations run by compiled code (graphql-jit) once their document is in
 * use: queries and mutations over HTTP and WebSocket, and each live event's
 * selection (handed to live/shared-results.ts). graphql's executor walks the
 * document again in every execution and keeps its per-execution caches in
 * WeakMaps; a compiled operation is one function per document and operation.
 * History page: service CPU a request about 0.9x; a live change 0.6x.
 *
 * Compiling costs about what 10 to 25 executions do (0.4 to 1 ms) and keeps
 * about 30 KB while its document is cached (yoga's parse cache: at most 1,024
 * documents), so a document is compiled only after COMPILE_AFTER executions:
 * a client sending new documents cannot make the service compile more than
 * it executes. Until then, when compiling fails, and when graphql's rules
 * refuse the variables (graphql-jit's own coercion is laxer), graphql's
 * executor runs it.
 *
 * A document with a string literal anywhere is never compiled: graphql-jit
 * writes literal argument values into the code it generates and turns a
 * string of one form into code there (a Date constructor call around the
 * rest of the string), so a client's literal could run in the service.
 * Variables reach the compiled function as values, never written into it.
 * What else a literal can carry into the code is a number, a boolean, null,
 * an enum's value or a name (letters, digits, underscores): no call can be
 * made of those.
 */
import {
  BREAK,
  execute,
  getOperationAST,
  getVariableValues,
  GraphQLError,
  visit,
  type ASTNode,
  type DocumentNode,
  type ExecutionArgs,
  type ExecutionResult,
  type SourceLocation,
  type VariableDefinitionNode,
} from 'graphql';
import { compileQuery, isCompiledQuery, type CompiledQuery } from 'graphql-jit';
import type { Plugin } from 'graphql-yoga';

import type { Execute } from '../live/shared-results.js';

type PromiseOrValue<T> = T | Promise<T>;

export const COMPILE_AFTER = 50;

/** For tests and diagnostics: executions run by compiled code. */
export const compiledStats = { executions: 0 };

// An operation's compiled function, and its variables' definitions (checked by graphql's rules).
type CompiledOperation = { query: CompiledQuery; variables: readonly VariableDefinitionNode[] };
type Compiled = { uses: number; byOperation: Map<string, CompiledOperation | null> };
// Per document: its use count and compiled operations, or null when it must never be compiled.
const compiledByDocument = new WeakMap<DocumentNode, Compiled | null>();

function hasStringLiteral(document: DocumentNode): boolean {
  let found = false;
  visit(document, {
    StringValue() {
      found = true;
      return BREAK;
    },
  });
  return found;
}

function compiledFor(args: ExecutionArgs): CompiledOperation | null {
  let compiled = compiledByDocument.get(args.document);
  if (compiled === null) return null;
  if (!compiled) {
    compiled = hasStringLiteral(args.document) ? null : { uses: 0, byOperation: new Map() };
    compiledByDocument.set(args.document, compiled);
    if (!compiled) return null;
  }
  if (compiled.uses < COMPILE_AFTER) {
    compiled.uses++;
    return null;
  }
  const operation = args.operationName ?? '';
  let made = compiled.byOperation.get(operation);
  if (made === undefined) {
    const query = compileQuery(args.schema, args.document, args.operationName ?? undefined);
    const variables = getOperationAST(args.document, args.operationName)?.variableDefinitions ?? [];
    made = isCompiledQuery(query) ? { query, variables } : null;
    compiled.byOperation.set(operation, made);
  }
  return made;
}

// The document's nodes that start at these places (the outermost of those that share a start).
function nodesAt(document: DocumentNode, locations: readonly SourceLocation[]): ASTNode[] {
  const nodes: ASTNode[] = [];
  const wanted = new Set(locations.map(({ line, column }) => `${line}:${column}`));
  visit(document, {
    enter(node) {
      const start = node.loc?.startToken;
      if (start && wanted.delete(`${start.line}:${start.column}`)) nodes.push(node);
      return wanted.size === 0 ? BREAK : undefined;
    },
  });
  return nodes;
}

/**
 * graphql-jit's errors carry their locations but not the document's nodes,
 * and yoga rebuilds every error of a result from its nodes: each is made
 * again here as graphql's executor makes it (message, nodes, path, the
 * resolver's error and its extensions).
 */
function located(result: ExecutionResult, document: DocumentNode): ExecutionResult {
  if (!result.errors?.some((error) => !error.nodes && error.locations)) return result;
  const errors = result.errors.map((error) =>
    error.nodes || !error.locations
      ? error
      : new GraphQLError(error.message, {
          nodes: nodesAt(document, error.locations),
          path: error.path,
          originalError: error.originalError,
          extensions: error.extensions,
        }),
  );
  return { ...result, errors };
}

/** Runs the operation compiled when it may be, else (and when its variables are refused) with `otherwise`. */
export function executeCompiled(args: ExecutionArgs, otherwise: Execute = execute): PromiseOrValue<ExecutionResult> {
  return run(args, otherwise, true);
}

/**
 * A live event's selection, compiled when it may be. Its variables are the
 * subscription's, which graphql's rules accepted when it began (a refused
 * subscription has no events): checking them again for every event was a few
 * per cent of the service's CPU a change.
 */
export function executeCompiledEvent(args: ExecutionArgs): PromiseOrValue<ExecutionResult> {
  return run(args, execute, false);
}

function run(args: ExecutionArgs, otherwise: Execute, checkVariables: boolean): PromiseOrValue<ExecutionResult> {
  const compiled = compiledFor(args);
  if (!compiled) return otherwise(args);
  const variables = (args.variableValues ?? {}) as Record<string, unknown>;
  // graphql-jit coerces variables by rules of its own (it took a list for an input object):
  // graphql's decide, and a refusal is answered by graphql's executor, in its words.
  if (checkVariables && compiled.variables.length > 0 && getVariableValues(args.schema, compiled.variables, variables, { maxErrors: 1 }).errors) {
    return otherwise(args);
  }
  compiledStats.executions++;
  const result = compiled.query.query(args.rootValue, args.contextValue, variables);
  // A closure (and, as tsx compiles it, a name defined on it) only for a result still to come.
  return result instanceof Promise ? result.then((made) => checked(made, args, otherwise)) : checked(result, args, otherwise);
}

function checked(result: ExecutionResult, args: ExecutionArgs, otherwise: Execute): PromiseOrValue<ExecutionResult> {
  if (!result.errors) return result;
  // No data at all: refused before anything ran (stricter than graphql), so nothing is done twice.
  return 'data' in result ? located(result, args.document) : otherwise(args);
}

/** Queries and mutations (yoga's execute phase) run compiled once their document is in use. */
export function useCompiledOperations(): Plugin {
  // Yoga hands every operation the same executeFn: one wrapper for it, not one a request.
  let wrapped: { of: unknown; execute: Execute } | undefined;
  return {
    onExecute: ({ executeFn, setExecuteFn }) => {
      if (wrapped?.of !== executeFn) wrapped = { of: executeFn, execute: (args) => executeCompiled(args, executeFn as Execute) };
      setExecuteFn(wrapped.execute as typeof executeFn);
    },
  };
}
