/** The printed form of the ETA accuracy suite. */
import { formatCount, formatRatio, renderTable } from '../lib/table.js';
import { ORGANIZATION_MIN_SAMPLES } from '../../src/services/eta.js';
import type { EtaResults } from './suite.js';

const seconds = (value: number) => `${Math.round(value)} s`;

export function renderEta(eta: EtaResults): string[] {
  const { plan } = eta;
  return [
    `ETA accuracy: ${formatCount(plan.historyRequests)} simulated completed requests (${formatCount(eta.historyStages)} stages) ` +
      `in ${plan.organizations} organizations; estimates refreshed in ${Math.round(eta.refreshMs)} ms, ` +
      `${eta.organizationsWithOwnEstimates} organizations with estimates of their own (≥ ${ORGANIZATION_MIN_SAMPLES} runs of a stage); ` +
      `${formatCount(plan.testRequests)} further requests estimated, ${formatCount(eta.testRequestsWithOwnEstimates)} of them from their organization's own history`,
    renderTable(
      [
        { title: 'when the ETA is read' },
        { title: 'ETA: mean abs. error', align: 'right' },
        { title: 'everyone’s medians only', align: 'right' },
        { title: 'naive (sum of expected): mean abs. error', align: 'right' },
        { title: 'ETA / naive', align: 'right' },
      ],
      [
        ...eta.checkpoints.map((c) => [`${c.stage}, ${c.at === 'start' ? 'as it starts' : 'halfway, 50 % reported'}`, seconds(c.etaMae), seconds(c.everyoneMae), seconds(c.naiveMae), formatRatio(c.ratio)]),
        ['all of the above', seconds(eta.overall.etaMae), seconds(eta.overall.everyoneMae), seconds(eta.overall.naiveMae), formatRatio(eta.overall.ratio)],
      ],
    ),
  ];
}
