/** A trace's annotations (labels, pins, supernodes, notes), checked against its graph's nodes. */
import type { Store } from '../../store/store.ts';
import type { DomainHandlers, HandlerContext } from '../context.ts';
import { ApiError } from '../errors.ts';
import { nodeIndexById } from '../view.ts';

export function annotationsHandlers(ctx: HandlerContext): DomainHandlers<'annotations'> {
  return {
    'annotations.get': (p) => {
      ctx.store.traces.get(p.traceId);
      return ctx.store.annotations.get(p.traceId);
    },
    'annotations.update': (p) => {
      const trace = ctx.store.traces.get(p.traceId);
      if (!ctx.store.graphs.has(trace.id)) {
        throw new ApiError('conflict', `trace ${trace.id} has no graph yet (it is ${trace.status})`, {
          field: 'traceId',
        });
      }
      const ids = nodeIndexById(ctx.store.graphs.nodes(trace.id));
      const check = (list: Iterable<string>, field: string) => {
        for (const id of list) {
          if (!ids.has(id)) {
            throw new ApiError(
              'invalid_params',
              `invalid params: ${field} names node "${id}", which is not in trace ${trace.id}'s graph`,
              {
                field,
              },
            );
          }
        }
      };
      if (p.pinned) check(p.pinned, 'pinned');
      p.supernodes?.forEach((s, i) => {
        check(s.nodeIds, `supernodes[${i}].nodeIds`);
      });
      if (p.labels) check(Object.keys(p.labels), 'labels');
      if (p.notes) check(Object.keys(p.notes), 'notes');
      const { traceId, ...changes } = p;
      const r = ctx.store.annotations.update(traceId, {
        ...changes,
        pinned: changes.pinned ? [...new Set(changes.pinned)] : undefined,
      } as Parameters<Store['annotations']['update']>[1]);
      ctx.emit('library.changed', { entity: 'annotation', id: traceId });
      return r;
    },
  };
}
