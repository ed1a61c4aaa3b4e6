/** User, and the `viewer` query that returns the signed-in one. */
import type { User } from '../../services/users.js';
import { builder } from '../builder.js';
import { requireViewer } from '../context.js';
import { RoleEnum } from '../enums.js';
import { OrganizationRef } from './organization.js';

export const UserRef = builder.objectRef<User>('User').implement({
  fields: (t) => ({
    id: t.exposeID('userId'),
    name: t.exposeString('name', { nullable: true }),
    email: t.exposeString('email', { nullable: true }),
    role: t.expose('role', { type: RoleEnum }),
    organizationId: t.exposeID('organizationId', { nullable: true }),
    organization: t.field({
      type: OrganizationRef,
      nullable: true,
      resolve: (user, _args, ctx) => (user.organizationId ? ctx.loaders.organizations.load(user.organizationId) : null),
    }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
  }),
});

builder.queryFields((t) => ({
  viewer: t.field({
    type: UserRef,
    description: 'The signed-in user.',
    resolve: async (_root, _args, ctx) => {
      const viewer = requireViewer(ctx);
      return (await ctx.loaders.users.load(viewer.userId))!;
    },
  }),
}));
