/**
 * What a newcomer does, in a real browser (Debian's Chromium, headless):
 * open GraphiQL, run the student's example as it is, then watch the request
 * move live (GraphQL over SSE from the page) while a worker reports stages.
 * PGlite project only: it is about the page and the browser, not the database.
 */
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { STAGES, startTestApp, type TestApp } from '../helpers/app.js';
import { describeWithBrowser, launchBrowser } from '../helpers/browser.js';
import { testDatabaseKind } from '../helpers/database.js';
import { driveToCompletion } from '../helpers/requests.js';

describe.skipIf(testDatabaseKind() !== 'pglite')('PGlite', () => describeWithBrowser('GraphiQL in a browser', () => {
  let app: TestApp;
  let browser: Browser;
  beforeAll(async () => {
    app = await startTestApp({ development: true, env: { DEMO_DATA: 'true' } });
    browser = await launchBrowser();
  });
  afterAll(async () => {
    await browser?.close();
    await app?.close();
  });

  test('the first example runs as it is, and the page watches the request move live', async () => {
    const page = await browser.newPage();
    const offPage: string[] = [];
    page.on('request', (request) => {
      if (!request.url().startsWith(app.url) && !request.url().startsWith('blob:') && !request.url().startsWith('data:')) {
        offPage.push(request.url());
      }
    });
    // The page runs under its content security policy: anything it blocks is a failure here.
    const blocked: string[] = [];
    page.on('console', (message) => {
      if (/Content.Security.Policy/i.test(message.text())) blocked.push(message.text());
    });
    await page.goto(`${app.url}/graphql`);
    await page.locator('.graphiql-execute-button').click();
    // The result pane's text, with the editor's non-breaking spaces made plain.
    const result = async () => (await page.locator('.graphiql-response').innerText()).replace(/\u00a0/g, ' ');
    await expect.poll(result, { timeout: 15_000 }).toMatch(/"created":\s*true/);
    const id = /"id":\s*"([0-9a-f-]{36})"/.exec(await result())![1]!;
    expect(offPage).toEqual([]); // the bundled GraphiQL: nothing fetched from a CDN
    expect(blocked).toEqual([]);

    // The page subscribes over SSE with the student's printed token, as a web client would.
    const studentToken = app.running.developmentTokens.find((t) => t.role === 'student')!.token;
    await page.evaluate(
      async ({ id, token }) => {
        const updates: unknown[] = [];
        (window as unknown as { updates: unknown[] }).updates = updates;
        const response = await fetch('/graphql', {
          method: 'POST',
          headers: { accept: 'text/event-stream', 'content-type': 'application/json', authorization: `Bearer ${token}` },
          body: JSON.stringify({
            query: `subscription ($id: ID!) { contentRequestProgress(id: $id) { kind sequence status progressPercentage } }`,
            variables: { id },
          }),
        });
        void (async () => {
          const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
          let buffer = '';
          for (;;) {
            const { value, done } = await reader.read();
            if (done) return;
            buffer += value;
            let end;
            while ((end = buffer.indexOf('\n\n')) >= 0) {
              const data = buffer.slice(0, end).split('\n').find((line) => line.startsWith('data: {'));
              buffer = buffer.slice(end + 2);
              if (data) updates.push(JSON.parse(data.slice(6)).data.contentRequestProgress);
            }
          }
        })();
      },
      { id, token: studentToken },
    );
    const updates = () => page.evaluate(() => (window as unknown as { updates: { status: string; progressPercentage: number }[] }).updates);
    await expect.poll(async () => (await updates()).length).toBe(1); // the snapshot

    const workerToken = app.running.developmentTokens.find((t) => t.role === 'worker')!.token;
    await driveToCompletion({ url: app.url, token: workerToken }, id);
    await expect.poll(async () => (await updates()).at(-1), { timeout: 10_000 }).toMatchObject({ status: 'COMPLETED', progressPercentage: 100 });
    const progress = (await updates()).map((u) => u.progressPercentage);
    expect(progress).toEqual([...progress].sort((a, b) => a - b)); // the bar only moves forward
    expect(await updates()).toHaveLength(1 + STAGES.length * 2);
  });
}));
