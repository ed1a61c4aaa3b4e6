/**
 * Builds the dashboard from its sources before the tests that serve it, as
 * `npm start` does: what the tests see is what the sources say.
 */
import { buildDashboard } from '../../scripts/build-dashboard.js';

export default async function setup() {
  await buildDashboard();
}
