/**
 * The dashboard in a real browser (Debian's Chromium, headless) against the
 * real server: one-click sign-in, a request driven through every stage by a
 * worker moves live on the page and leaves the active list, its detail view
 * lists every event once and in order, and the page reaches nothing but its
 * own origin. Leaves a screenshot with requests in flight in test-artifacts/.
 * PGlite project only: it is about the page and the browser, not the database.
 */
import { mkdir } from 'node:fs/promises';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { dataOf, startTestApp, type TestApp } from '../helpers/app.js';
import { describeWithBrowser, launchBrowser } from '../helpers/browser.js';
import { testDatabaseKind } from '../helpers/database.js';
import { driveTo, driveToCompletion, reportStage, submitRequest } from '../helpers/requests.js';

const ARTIFACTS = new URL('../../test-artifacts/', import.meta.url);

describe.skipIf(testDatabaseKind() !== 'pglite')('PGlite', () => describeWithBrowser('the dashboard in a browser', () => {
  let app: TestApp;
  let browser: Browser;
  let page: Page;
  const offOrigin: string[] = [];
  const pageErrors: string[] = [];
  const tokenOf = (role: string) => app.running.developmentTokens.find((user) => user.role === role)!.token;

  beforeAll(async () => {
    app = await startTestApp({ development: true, env: { DEMO_DATA: 'true' } });
    browser = await launchBrowser();
    page = await browser.newPage({ viewport: { width: 1200, height: 800 } });
    const own = new URL(app.url);
    page.on('request', (request) => {
      if (new URL(request.url()).origin !== own.origin) offOrigin.push(request.url());
    });
    page.on('websocket', (socket) => {
      if (new URL(socket.url()).host !== own.host) offOrigin.push(socket.url());
    });
    page.on('pageerror', (error) => pageErrors.push(error.message));
    page.on('console', (message) => {
      if (message.type() === 'error') pageErrors.push(message.text());
    });
  });
  afterAll(async () => {
    await browser?.close();
    await app?.close();
  });

  test('signed in with one click, a request moves live through every stage, then leaves the active list', async () => {
    await page.goto(`${app.url}/`);
    await page.locator('button[data-role="admin"]').click();
    expect(await page.evaluate(() => localStorage.getItem('tracker.token'))).toBe(tokenOf('admin'));
    await expect.poll(() => page.locator('[data-connection]').getAttribute('data-connection')).toBe('live');

    const student = { url: app.url, token: tokenOf('student') };
    const worker = { url: app.url, token: tokenOf('worker') };
    const watched = await submitRequest(student, { topic: 'Volcanoes' });
    const inFlight = await submitRequest(student, { topic: 'Glaciers' });
    const row = page.locator(`#active [data-request-id="${watched.id}"]`);
    await row.waitFor();
    await expect.poll(() => row.innerText()).toContain('Volcanoes');

    // Every value the row's progress bar shows, as it shows it.
    await page.evaluate((id) => {
      const seen: number[] = [];
      (window as any).seenProgress = seen;
      new MutationObserver(() => {
        const bar = document.querySelector(`#active [data-request-id="${id}"] [role="progressbar"]`);
        const value = Number(bar?.getAttribute('aria-valuenow'));
        if (bar && seen.at(-1) !== value) seen.push(value);
      }).observe(document.getElementById('active')!, { subtree: true, attributes: true, childList: true });
    }, watched.id);

    await driveTo(worker, inFlight.id, 'script_generation');
    const other = page.locator(`#active [data-request-id="${inFlight.id}"] [role="progressbar"]`);
    await expect.poll(async () => Number(await other.getAttribute('aria-valuenow'))).toBeGreaterThan(0);
    // The service's estimate of when it will be done, counting down.
    await expect.poll(() => page.locator(`#active [data-request-id="${inFlight.id}"] .ready-in`).innerText()).toMatch(/^~\d+(m \d+)?s$/);
    await mkdir(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: new URL('dashboard-in-flight.png', ARTIFACTS).pathname, fullPage: true });

    await driveToCompletion(worker, watched.id, { progressSteps: [50] });
    const finished = page.locator(`#finished [data-request-id="${watched.id}"]`);
    await finished.waitFor();
    expect(await finished.locator('[role="progressbar"]').getAttribute('aria-valuenow')).toBe('100');
    expect(await row.count()).toBe(0);
    const seen: number[] = await page.evaluate(() => (window as any).seenProgress);
    expect(seen.length).toBeGreaterThan(3);
    expect(seen).toEqual([...seen].sort((a, b) => a - b)); // the bar only moves forward
    await expect.poll(() => page.locator(`#active [data-request-id="${inFlight.id}"]`).count()).toBe(1);
  });

  test("the detail view lists every one of the request's events once, in order, and a timeline of its stages", async () => {
    const student = { url: app.url, token: tokenOf('student') };
    const request = await submitRequest(student, { topic: 'Tectonic plates' });
    await page.goto(`${app.url}/#/requests/${request.id}`);
    await page.locator('[data-sequence="1"]').waitFor();
    await driveToCompletion({ url: app.url, token: tokenOf('worker') }, request.id);

    const logged = dataOf(
      await app.graphql(`query ($id: ID!) { contentRequest(id: $id) { events(first: 100) { edges { node { sequence } } } } }`, {
        variables: { id: request.id },
        token: student.token,
      }),
    ).contentRequest.events.edges.map((edge: any): number => Number(edge.node.sequence));
    const shown = () => page.locator('.events [data-sequence]').evaluateAll((items) => items.map((item) => Number(item.getAttribute('data-sequence'))));
    await expect.poll(shown).toHaveLength(logged.length);
    expect(await shown()).toEqual(logged.map((_: number, index: number) => index + 1));
    expect(await page.locator('.timeline li').count()).toBe(5);
    for (const text of await page.locator('.timeline li').allInnerTexts()) expect(text).toContain('completed');
  });

  test('a failure shows live with its stage and message; retry sends it back to the active list', async () => {
    await page.goto(`${app.url}/`);
    await expect.poll(() => page.locator('[data-connection]').getAttribute('data-connection')).toBe('live');
    const request = await submitRequest({ url: app.url, token: tokenOf('student') }, { topic: 'Earthquakes' });
    const worker = { url: app.url, token: tokenOf('worker') };
    await driveTo(worker, request.id, 'retrieval');
    await reportStage(worker, request.id, 'retrieval', 'FAILED', undefined, { errorMessage: 'the library was closed' });
    const failure = page.locator(`#failures [data-request-id="${request.id}"]`);
    await expect.poll(() => failure.innerText()).toMatch(/Earthquakes.*retrieval.*the library was closed/);
    expect(await page.locator(`#active [data-request-id="${request.id}"]`).count()).toBe(0);

    await failure.getByRole('button', { name: 'Retry' }).click();
    await expect.poll(() => failure.count()).toBe(0);
    const row = page.locator(`#active [data-request-id="${request.id}"]`);
    await expect.poll(() => row.locator('.status').innerText()).toBe('PENDING');
    await expect.poll(() => row.innerText()).toContain('Earthquakes');
  });

  test('leaving a view ends its live subscriptions at once', async () => {
    await page.goto(`${app.url}/`);
    await expect.poll(() => page.locator('[data-connection]').getAttribute('data-connection')).toBe('live');
    const request = await submitRequest({ url: app.url, token: tokenOf('student') }, { topic: 'Deserts' });
    for (let visit = 0; visit < 3; visit++) {
      await page.evaluate((id) => (location.hash = `#/requests/${id}`), request.id);
      await page.locator('.events [data-sequence="1"]').waitFor();
      await page.evaluate(() => (location.hash = '#/'));
      await page.locator('#active').waitFor();
    }
    const openSubscriptions = async () => {
      const metrics = await (await fetch(app.running.metricsUrl)).text();
      return Number(/^tracker_live_subscriptions (\S+)$/m.exec(metrics)?.[1]);
    };
    // The overview's two feeds (all updates, failures); none left over from the detail views.
    await expect.poll(openSubscriptions).toBe(2);
  });

  test('a token the service refuses sends the viewer back to sign-in, saying why', async () => {
    await page.goto(`${app.url}/`);
    const errorsBefore = pageErrors.length;
    await page.evaluate(() => localStorage.setItem('tracker.token', 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.forged'));
    await page.reload();
    await expect.poll(() => page.locator('.sign-in [role="alert"]').innerText()).toMatch(/refused your token/);
    expect(await page.evaluate(() => localStorage.getItem('tracker.token'))).toBeNull();
    // The browser logs the refused requests (401) itself: those, and nothing else.
    const refusals = pageErrors.splice(errorsBefore);
    expect(refusals.length).toBeGreaterThan(0);
    for (const refusal of refusals) expect(refusal).toMatch(/status of 401/);
  });

  test('the page reached nothing but its own origin, and raised no error', () => {
    expect(offOrigin).toEqual([]);
    expect(pageErrors).toEqual([]);
  });
}));
