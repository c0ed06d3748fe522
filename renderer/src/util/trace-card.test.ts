/** Library card text: the distinguishing part of a prompt, and settings diffs of re-traces. */
import { describe, expect, it } from 'vitest';
import { DEFAULT_SETTINGS, type TraceRecord } from '../api/types.ts';
import { differsFrom, distinguishingPrompt, settingsDiff, shortPrompt } from './trace-card.ts';

describe('shortPrompt', () => {
  it('cuts at a word boundary', () => {
    expect(shortPrompt('The capital of state containing Dallas is', 60)).toBe(
      'The capital of state containing Dallas is',
    );
    expect(shortPrompt('The capital of state containing Dallas is', 33)).toBe(
      'The capital of state containing…',
    );
  });
});

describe('distinguishingPrompt', () => {
  it('shows short prompts whole', () => {
    expect(distinguishingPrompt('The capital of state containing Dallas is', [], 44)).toBe(
      'The capital of state containing Dallas is',
    );
  });

  it('keeps the words where prompts sharing a prefix differ, and the end', () => {
    const a = 'The capital of the state containing the city of Dallas is';
    const b = 'The capital of the state containing the city of Oakland is';
    const sa = distinguishingPrompt(a, [a, b], 36);
    const sb = distinguishingPrompt(b, [a, b], 36);
    expect(sa).toContain('Dallas is');
    expect(sb).toContain('Oakland is');
    expect(sa.startsWith('The capital')).toBe(true);
    expect(sa).toContain('…');
    expect(sa.length).toBeLessThanOrEqual(40);
    expect(sa).not.toBe(sb);
  });

  it('never cuts inside a word and keeps the end of a long unique prompt', () => {
    const p =
      'In a quiet village by the sea there lived an old fisherman who every morning walked to the harbour';
    const s = distinguishingPrompt(p, [p], 44);
    expect(s.endsWith('the harbour')).toBe(true);
    const [head, tail] = s.split('…');
    expect(p.startsWith(head)).toBe(true);
    expect(p.endsWith(tail)).toBe(true);
    expect(p.split(' ')).toContain(head.split(' ').pop());
    expect(p.split(' ')).toContain(tail.split(' ')[0]);
  });

  it('keeps a difference in the middle of two long prompts visible', () => {
    const tail = ' and then they all went home for a long dinner with the family';
    const a = `The capital of the state containing Dallas is Austin${tail}`;
    const b = `The capital of the state containing Fresno is Sacramento${tail}`;
    const sa = distinguishingPrompt(a, [a, b], 50);
    expect(sa).toContain('Dallas');
    expect(sa).toContain('family');
  });
});

const rec = (id: number, settings: Partial<TraceRecord['settings']>, modelId = 1): TraceRecord =>
  ({
    id,
    prompt: 'p',
    tokenIds: [2, 5],
    modelId,
    settings: { ...DEFAULT_SETTINGS, ...settings },
  }) as TraceRecord;

describe('settings diffs', () => {
  it('lists what changed against the earliest trace of the same prompt', () => {
    expect(settingsDiff(rec(2, { nodeThreshold: 0.6 }).settings, rec(1, {}).settings)).toEqual([
      'nt 0.6 (was 0.8)',
    ]);
    const list = [rec(1, {}), rec(2, { nodeThreshold: 0.6, maxNLogits: 5 }), rec(3, {})];
    const d = differsFrom(list[1], list, (id) => `m${id}`);
    expect(d).toEqual({ id: 1, changes: ['nt 0.6 (was 0.8)', 'logits 5 (was 10)'], copy: false });
    expect(differsFrom(list[2], list, (id) => `m${id}`)).toEqual({ id: 1, changes: [], copy: true });
    expect(differsFrom(list[0], list, (id) => `m${id}`)).toBeNull();
    const other = rec(4, {}, 2);
    expect(differsFrom(other, [...list, other], (id) => `m${id}`)?.changes).toEqual(['model m2 (was m1)']);
  });
});
