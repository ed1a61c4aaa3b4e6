/** Organization: the tenant a user and their requests belong to; reached through User and ContentRequest. */
import type { Organization } from '../../services/users.js';
import { builder } from '../builder.js';

export const OrganizationRef = builder.objectRef<Organization>('Organization').implement({
  fields: (t) => ({
    id: t.exposeID('organizationId'),
    name: t.exposeString('name'),
    domain: t.exposeString('domain', { nullable: true }),
    subscriptionTier: t.exposeString('subscriptionTier', { nullable: true }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
  }),
});
