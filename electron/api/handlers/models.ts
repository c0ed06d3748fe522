/** Registered models: their folders checked off the main thread, renamed, deleted; token lookups. */
import type { DomainHandlers, HandlerContext } from '../context.ts';
import { checkModelFoldersOffThread } from '../model-check.ts';
import { ModelTokenLookup } from '../model-tokens.ts';

export function modelsHandlers(ctx: HandlerContext): DomainHandlers<'models'> {
  const tokenLookup = new ModelTokenLookup();
  return {
    'models.list': () => ctx.store.models.list(),
    'models.get': (p) => ctx.store.models.get(p.id),
    'models.register': async (p) => {
      const r = ctx.store.models.upsert(await checkModelFoldersOffThread(p));
      ctx.emit('library.changed', { entity: 'model', id: r.id });
      return r;
    },
    'models.validate': async (p) => {
      const m = ctx.store.models.get(p.id);
      const r = ctx.store.models.upsert(
        await checkModelFoldersOffThread({
          checkpointDir: m.checkpointDir,
          transcoderDir: m.transcoderDir,
          name: m.name,
        }),
      );
      ctx.emit('library.changed', { entity: 'model', id: r.id });
      return r;
    },
    'models.rename': (p) => {
      const r = ctx.store.models.rename(p.id, p.name.trim());
      ctx.emit('library.changed', { entity: 'model', id: r.id });
      return r;
    },
    'models.delete': (p) => {
      ctx.store.models.delete(p.id);
      ctx.emit('library.changed', { entity: 'model', id: p.id });
      return { id: p.id };
    },
    'models.transcoderSets': () => ctx.store.models.listTranscoderSets(),
    'models.tokens': (p) => tokenLookup.lookup(ctx.store.models.get(p.modelId), p),
  };
}
