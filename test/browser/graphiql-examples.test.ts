/**
 * Every GraphiQL example tab runs as shipped, in a real browser: each tab in
 * turn, with the header its comment names (the embedded mode's printed
 * tokens), answers without an error. The worker's tab gets the request id
 * pasted, as it asks; the live Watch tab runs in a window of its own, as the
 * README walks through it: its first message (the snapshot) arrives, then
 * the worker's next report, made by editing the Report tab as the README says.
 * PGlite project only: it is about the page and the browser, not the database.
 */
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { graphiqlOptions } from '../../src/http/graphiql.js';
import type { Role } from '../../src/services/access.js';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { describeWithBrowser, launchBrowser } from '../helpers/browser.js';
import { testDatabaseKind } from '../helpers/database.js';

const PLACEHOLDER = '<paste a request id>';

/** Replaces a Monaco editor's whole text by pasting over it (typed, the editor would close brackets and quotes itself). */
async function replaceText(page: Page, editor: string, text: string) {
  await page.locator(`${editor} .view-lines`).click();
  await page.keyboard.press('ControlOrMeta+A');
  await page.evaluate((pasted) => {
    const clipboard = new DataTransfer();
    clipboard.setData('text/plain', pasted);
    document.activeElement!.dispatchEvent(new ClipboardEvent('paste', { clipboardData: clipboard, bubbles: true, cancelable: true }));
  }, text);
}

/** Pastes a new query into the open tab, and waits until GraphiQL has taken it (it saves its tabs, debounced). */
async function replaceQuery(page: Page, query: string) {
  await replaceText(page, '.graphiql-query-editor', query);
  const saved = JSON.stringify(query).slice(1, -1);
  await expect.poll(() => page.evaluate((text) => Object.values(localStorage).some((value) => value.includes(text)), saved)).toBe(true);
}

/** The result pane's text, with the editor's non-breaking spaces made plain. */
const resultText = async (page: Page) => (await page.locator('.graphiql-response').innerText()).replace(/\u00a0/g, ' ');

/** Opens the tab named `name` and pastes the header its comment names. */
async function openTab(page: Page, name: string, query: string) {
  // A click event: Playwright's pointer sequence on the (draggable) tab does not select it.
  await page.locator('.graphiql-tab-button', { hasText: name }).dispatchEvent('click');
  await expect.poll(() => page.locator('.graphiql-tab-active').innerText()).toBe(name);
  const header = /^# Headers[^:]*: (\{.*\})$/m.exec(query)?.[1];
  if (!header) throw new Error(`the ${name} tab names no header`);
  await replaceText(page, '.graphiql-editor-tool [data-uri$="headers.json"]', header);
}

/** Runs the open tab and returns the JSON the server answered. */
async function run(page: Page, name: string) {
  const answered = page.waitForResponse((response) => response.url().endsWith('/graphql') && response.request().postDataJSON()?.operationName === name);
  await page.locator('.graphiql-execute-button').click();
  return (await (await answered).json()) as { data?: Record<string, any>; errors?: unknown[] };
}

describe.skipIf(testDatabaseKind() !== 'pglite')('PGlite', () => describeWithBrowser('every GraphiQL example tab in a browser', () => {
  let app: TestApp;
  let browser: Browser;
  let tabs: { name: string; query: string }[];
  beforeAll(async () => {
    app = await startTestApp({ development: true, env: { DEMO_DATA: 'true' } });
    const tokens: Partial<Record<Role, string>> = {};
    for (const { role, token } of app.running.developmentTokens) tokens[role] ??= token;
    tabs = graphiqlOptions(tokens).defaultTabs.map(({ query }) => ({ name: /^(?:query|mutation|subscription) (\w+)/m.exec(query)![1]!, query }));
    browser = await launchBrowser();
  });
  afterAll(async () => {
    await browser?.close();
    await app?.close();
  });

  test('each tab runs without an error; Watch, in a window of its own, shows its snapshot, then the next report', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${app.url}/graphql`);
    let requestId: string | undefined;
    const ran: string[] = [];
    for (const { name, query } of tabs) {
      if (name === 'Watch') continue; // below, in a window of its own
      await openTab(page, name, query);
      if (query.includes(PLACEHOLDER)) {
        expect(requestId, `a request id for ${name}`).toBeDefined();
        await replaceQuery(page, query.replace(PLACEHOLDER, requestId!));
      }
      const result = await run(page, name);
      expect(result.errors, name).toBeUndefined();
      expect(result.data, name).toBeTruthy();
      requestId ??= result.data!.submitContentRequest?.request.id;
      ran.push(name);
    }
    expect(ran).toEqual(tabs.map((tab) => tab.name).filter((name) => name !== 'Watch'));

    // Watch in a second window (GraphiQL stops a subscription when its tab is left).
    const watch = tabs.find((tab) => tab.name === 'Watch')!;
    const watcher = await context.newPage();
    await watcher.goto(`${app.url}/graphql`);
    await openTab(watcher, 'Watch', watch.query);
    await watcher.locator('.graphiql-execute-button').click();
    await expect.poll(() => resultText(watcher), { timeout: 15_000 }).toMatch(/"kind": "SNAPSHOT"/);
    expect(await resultText(watcher)).toContain(requestId);
    expect(await resultText(watcher)).not.toMatch(/"errors"/);

    // The README's next step, back in the first window: the Report tab edited to COMPLETED and run again.
    const report = tabs.find((tab) => tab.name === 'Report')!;
    await page.bringToFront();
    await openTab(page, 'Report', report.query);
    await replaceQuery(page, report.query.replace(PLACEHOLDER, requestId!).replace('status: IN_PROGRESS', 'status: COMPLETED'));
    const completed = await run(page, 'Report');
    expect(completed.errors).toBeUndefined();
    expect(completed.data?.reportStage.id).toBe(requestId);
    // It shows up in the Watch window, still running.
    await expect.poll(() => resultText(watcher), { timeout: 15_000 }).toMatch(/"kind": "EVENT"/);
    expect(await resultText(watcher)).toContain('STAGE_COMPLETED');

    await context.close();
  });
}));
