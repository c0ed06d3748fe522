/**
 * Typed arrays in job messages (electron/jobs/views.ts): views travel as {buffer, byteOffset,
 * length} records because Node's structured clone truncates a view's 32-bit byte length. The
 * multi-GB case itself runs only with CIRCUIT_LARGE_TESTS=1 (it maps 4 GiB of address space,
 * never touched); the default tests check the records and a real transfer of small views.
 */
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { packViews, unpackViews } from '../../electron/jobs/views.ts';

function roundTrip(message: unknown, transfer: ArrayBuffer[]): Promise<unknown> {
  const { port1, port2 } = new MessageChannel();
  return new Promise((resolve) => {
    port2.once('message', (m) => {
      port1.close();
      port2.close();
      resolve(m);
    });
    (port1 as MessagePort).postMessage(message, transfer);
  });
}

/** True when some typed array view is left in `v` (plain objects and arrays walked). */
function hasView(v: unknown): boolean {
  if (typeof v !== 'object' || v === null) return false;
  if (ArrayBuffer.isView(v)) return true;
  return Object.values(v as Record<string, unknown>).some(hasView);
}

describe('typed arrays across threads', () => {
  it('packs every view into a record of plain numbers and leaves the input untouched', () => {
    const adjacency = new Float32Array([1, 2, 3, 4]);
    const payload = { graph: { adjacency, nodes: { layer: Int32Array.of(1, 2), names: ['a'] } }, n: 3 };
    const packed = packViews(payload) as { graph: { adjacency: Record<string, unknown> } };
    expect(hasView(packed)).toBe(false);
    expect(packed.graph.adjacency).toMatchObject({ byteOffset: 0, length: 4 });
    expect(payload.graph.adjacency).toBe(adjacency);
  });

  it('rebuilds views over transferred buffers: offsets, lengths, types and sharing preserved', async () => {
    const buffer = new ArrayBuffer(64);
    const whole = new Float32Array(buffer);
    whole.forEach((_, i) => {
      whole[i] = i;
    });
    const tail = new Float32Array(buffer, 40, 3);
    const ints = Int32Array.of(-1, 7, 1 << 30);
    const bytes = Buffer.from('hello');
    const payload = {
      a: whole,
      b: tail,
      list: [ints, { deep: new Float64Array([0.5]) }],
      big: BigInt64Array.of(-(2n ** 40n)),
      bytes,
      keep: new Map([[1, 2]]),
      s: 'x',
      nothing: null,
    };
    const got = unpackViews(
      await roundTrip(packViews(payload), [buffer, ints.buffer as ArrayBuffer]),
    ) as typeof payload;
    expect(got.a).toBeInstanceOf(Float32Array);
    expect(Array.from(got.a)).toEqual(Array.from({ length: 16 }, (_, i) => i));
    expect(got.b).toBeInstanceOf(Float32Array);
    expect(Array.from(got.b)).toEqual([10, 11, 12]);
    expect(got.b.buffer).toBe(got.a.buffer); // one transferred buffer, two views
    expect(got.list[0]).toEqual(Int32Array.of(-1, 7, 1 << 30));
    expect((got.list[1] as { deep: Float64Array }).deep).toEqual(new Float64Array([0.5]));
    expect(got.big).toEqual(BigInt64Array.of(-(2n ** 40n)));
    expect(Buffer.from(got.bytes as Uint8Array).toString()).toBe('hello');
    expect(got.keep).toEqual(new Map([[1, 2]]));
    expect(got.s).toBe('x');
    expect(got.nothing).toBeNull();
    expect(buffer.byteLength).toBe(0); // moved, not copied
  });

  it.runIf(process.env.CIRCUIT_LARGE_TESTS === '1')(
    'moves a view over more than 4 GiB whole (a plain view arrives truncated)',
    async () => {
      const n = 2 ** 30 + 5; // 4 GiB + 20 bytes of address space, never written except the end
      const plain = new Float32Array(n);
      plain[n - 1] = 7;
      const truncated = (await roundTrip({ a: plain }, [plain.buffer as ArrayBuffer])) as {
        a: Float32Array;
      };
      expect(truncated.a.length).toBe(5); // Node's structured clone: byte length mod 2^32
      const a = new Float32Array(n);
      a[n - 1] = 7;
      const got = unpackViews(await roundTrip(packViews({ a }), [a.buffer as ArrayBuffer])) as {
        a: Float32Array;
      };
      expect(got.a.length).toBe(n);
      expect(got.a[n - 1]).toBe(7);
    },
  );
});
