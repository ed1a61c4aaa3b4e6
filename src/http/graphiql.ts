/**
 * GraphiQL's opening tabs: one worked example per kind of user. GraphiQL
 * keeps one headers editor for the opening tab and ignores the headers and
 * variables of the others, so each example is self-contained (no variables)
 * and names, in its first lines, the header to paste for its role: in the
 * embedded mode that is the role's printed development token. The student's
 * header is preloaded, so the first tab runs as it is.
 */
import { createHash } from 'node:crypto';
import { renderGraphiQL } from '@graphql-yoga/render-graphiql';
import type { GraphiQLOptions } from 'graphql-yoga';
import type { Role } from '../services/access.js';

type Tab = { query: string };

const header = (token: string | undefined, role: Role) =>
  `{"Authorization": "Bearer ${token ?? `<a ${role} token>`}"}`;

const examples = (tokens: Partial<Record<Role, string>>): Tab[] => [
  {
    query: `# A student asks for content. Run it (▶); run it again: the same correlationId
# returns the same request with created: false. Copy the request's id for the worker's tab.
# Headers (below) for a student: ${header(tokens.student, 'student')}
mutation Submit {
  submitContentRequest(input: {
    correlationId: "my-first-request"
    topic: "Photosynthesis"
    studentQuery: "How do plants turn light into food?"
    gradeLevel: "8"
  }) {
    created
    request { id status progressPercentage createdAt }
  }
}`,
  },
  {
    query: `# A student's own requests, newest first, with stages and the event log.
# For the next page, add after: "<pageInfo.endCursor>" next to first.
# Headers for a student: ${header(tokens.student, 'student')}
query MyRequests {
  viewer { id name role }
  contentRequests(first: 10) {
    edges {
      node {
        id topic status currentStage progressPercentage
        stages { stage status progressPercentage }
        events(first: 20) { edges { node { sequence eventType newStatus stage progressPercentage createdAt } } }
      }
    }
    pageInfo { hasNextPage endCursor }
  }
}`,
  },
  {
    query: `# A pipeline worker reports a stage. Paste the request's id, then walk the stages
# in order (the admin's tab lists them: pipelineStages), each IN_PROGRESS
# (optionally with progress: 0-100) then COMPLETED. FAILED with an
# errorMessage fails the request. Re-run MyRequests, or keep Watch open, to see it move.
# Headers for a worker: ${header(tokens.worker, 'worker')}
mutation Report {
  reportStage(input: { requestId: "<paste a request id>", stage: "validation", status: IN_PROGRESS }) {
    id status currentStage progressPercentage errorStage
  }
}`,
  },
  {
    query: `# Live: every request of yours as it moves (a snapshot of each first, then every change).
# GraphiQL stops a subscription when you switch tabs: open GraphiQL in a second window,
# run this tab there, and report stages from the worker's tab in the first one.
# Headers for a student: ${header(tokens.student, 'student')}
subscription Watch {
  contentRequestUpdates {
    kind requestId sequence status stage progressPercentage event { eventType createdAt }
  }
}`,
  },
  {
    query: `# An org admin: the organization's requests in flight, and its hourly metrics.
# Headers for an org admin: ${header(tokens.org_admin, 'org_admin')}
query Organization {
  activeRequests(first: 20) { id topic status progressPercentage studentName }
  requestMetrics { hour totalRequests completedRequests failedRequests successRate p95DurationSeconds errorBreakdown }
}`,
  },
  {
    query: `# Platform admins: failures by stage, work in flight (overdue first), the pipeline.
# Headers for an admin: ${header(tokens.admin, 'admin')}
query Operations {
  failed: contentRequests(first: 20, filter: { status: [FAILED] }) {
    edges { node { id topic errorStage errorMessage failedAt retryCount } }
  }
  activeRequests(first: 20) { id topic status currentStage progressPercentage secondsInStage isOverdue }
  pipelineStages { name displayName order weight expectedDurationSeconds }
}`,
  },
];

/** The examples' operation names (Submit, MyRequests, …): metrics label them from the start. */
export const EXAMPLE_OPERATION_NAMES = examples({}).map(({ query }) => /^(?:query|mutation|subscription) (\w+)/m.exec(query)![1]!);

export function graphiqlOptions(tokens: Partial<Record<Role, string>>) {
  return {
    title: 'Content request tracker',
    defaultTabs: examples(tokens),
    // The opening tab's headers editor; a printed token is a development one, never a real secret.
    headers: header(tokens.student, 'student'),
  };
}

/**
 * The bundled GraphiQL page, rendered once (9 MB, the same every time), and
 * its content security policy: its two inline scripts by hash, nothing from
 * another origin, no framing.
 */
export function graphiqlPage() {
  let rendered: { key: string; html: string; policy: string } | undefined;
  const render = (options?: GraphiQLOptions) => {
    // yoga may hand over a new but equal options object per request.
    const key = JSON.stringify(options ?? {});
    if (!rendered || rendered.key !== key) {
      const html = renderGraphiQL(options);
      const hashes = [...html.matchAll(/<script>([^]*?)<\/script>/g)].map(
        ([, script]) => `'sha256-${createHash('sha256').update(script!).digest('base64')}'`,
      );
      const policy = [
        "default-src 'none'",
        `script-src ${hashes.join(' ')}`,
        // GraphiQL and its editor set styles at run time.
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "worker-src 'self' blob:",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
      ].join('; ');
      rendered = { key, html, policy };
    }
    return rendered;
  };
  return {
    renderGraphiQL: (options?: GraphiQLOptions) => render(options).html,
    /** The policy for the page last rendered. */
    contentSecurityPolicy: () => rendered?.policy,
  };
}
