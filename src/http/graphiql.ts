/**
 * GraphiQL's opening tabs: one worked example per kind of user. In the
 * embedded mode each tab carries that user's development token, so a newcomer
 * runs them as they are.
 */
import type { Role } from '../services/viewer.js';

type Tab = { query: string; variables?: string; headers?: string };

const SUBMIT = `# A student asks for content. Run it twice: the same correlationId returns the same request (created: false).
mutation Submit($input: SubmitContentRequestInput!) {
  submitContentRequest(input: $input) {
    created
    request { id status progressPercentage createdAt }
  }
}`;

const MY_REQUESTS = `# A student's own requests, newest first. Pass pageInfo.endCursor as "after" for the next page.
query MyRequests($after: String) {
  viewer { id name role }
  contentRequests(first: 10, after: $after) {
    edges {
      node {
        id topic status currentStage progressPercentage
        stages { stage status progressPercentage }
        events(first: 20) { edges { node { sequence eventType newStatus stage progressPercentage createdAt } } }
      }
    }
    pageInfo { hasNextPage endCursor }
  }
}`;

const REPORT = `# A pipeline worker reports a stage. Paste a request id from the student's tab, then walk the stages:
# validation, retrieval, script_generation, video_generation, video_processing, each IN_PROGRESS
# (optionally with progress 0-100) then COMPLETED; FAILED with an errorMessage fails the request.
mutation Report($input: ReportStageInput!) {
  reportStage(input: $input) { id status currentStage progressPercentage errorStage }
}`;

const ORGANIZATION = `# An org admin: the organization's requests by status, and its hourly metrics.
query Organization {
  contentRequests(first: 20, filter: { status: [PENDING, VALIDATING, RETRIEVING, GENERATING_SCRIPT, GENERATING_VIDEO, PROCESSING_VIDEO] }) {
    edges { node { id topic status progressPercentage student { name } } }
  }
  requestMetrics { hour totalRequests completedRequests failedRequests successRate p95DurationSeconds errorBreakdown }
}`;

const OPERATIONS = `# Platform admins: failures by stage, work in flight (overdue first), the pipeline.
query Operations {
  failed: contentRequests(first: 20, filter: { status: [FAILED] }) {
    edges { node { id topic errorStage errorMessage failedAt retryCount } }
  }
  activeRequests(first: 20) { id topic status currentStage progressPercentage secondsInStage isOverdue }
  pipelineStages { name displayName order weight expectedDurationSeconds }
}`;

export function graphiqlTabs(tokens: Partial<Record<Role, string>>): Tab[] {
  const headers = (role: Role) =>
    JSON.stringify({ Authorization: `Bearer ${tokens[role] ?? `<a ${role} token>`}` }, null, 2);
  return [
    {
      query: SUBMIT,
      variables: JSON.stringify(
        { input: { correlationId: 'demo-request-1', topic: 'Photosynthesis', studentQuery: 'Explain photosynthesis', gradeLevel: '8' } },
        null,
        2,
      ),
      headers: headers('student'),
    },
    { query: MY_REQUESTS, headers: headers('student') },
    {
      query: REPORT,
      variables: JSON.stringify({ input: { requestId: '<paste a request id>', stage: 'validation', status: 'IN_PROGRESS' } }, null, 2),
      headers: headers('worker'),
    },
    { query: ORGANIZATION, headers: headers('org_admin') },
    { query: OPERATIONS, headers: headers('admin') },
  ];
}
