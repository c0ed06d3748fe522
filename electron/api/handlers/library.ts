/** The library's projects. Deleting one stops its running job first. */
import type { DomainHandlers, HandlerContext } from '../context.ts';

export function libraryHandlers(ctx: HandlerContext): DomainHandlers<'projects'> {
  return {
    'projects.list': () => ctx.store.projects.list(),
    'projects.create': (p) => {
      const r = ctx.store.projects.create(p.name.trim(), p.description ?? '');
      ctx.emit('library.changed', { entity: 'project', id: r.id });
      return r;
    },
    'projects.update': (p) => {
      const r = ctx.store.projects.update(p.id, { name: p.name?.trim(), description: p.description });
      ctx.emit('library.changed', { entity: 'project', id: r.id });
      return r;
    },
    'projects.delete': async (p) => {
      ctx.store.projects.get(p.id);
      if (ctx.queue.running?.projectId === p.id) await ctx.queue.stop('cancel');
      ctx.store.deleteProject(p.id);
      ctx.emit('library.changed', { entity: 'project', id: p.id });
      return { id: p.id };
    },
  };
}
