/**
 * Position alignment of two prompts, so nodes of graph A and graph B that sit at "the same
 * place in the prompt" can be matched although their positions (or tokens) differ.
 *
 * - Same tokens: every position matches itself.
 * - Same length, some tokens differ (e.g. "… Dallas is" / "… Oakland is"): positions match
 *   one to one and every differing position is a substitution. A prompt edited by swapping
 *   words keeps its length, and matching by position keeps every later position in step.
 * - Different lengths: positions match along a longest common subsequence of the token
 *   strings (the classic edit-script alignment: the most positions that read the same token,
 *   in order). Between two consecutive matches, a gap of equal length on both sides is paired
 *   position by position as substitutions (a word replaced inside an insertion); any other
 *   gap position is in one prompt only. The common prefix and suffix are matched first, so
 *   the quadratic table covers only the edited middle.
 */
import { EngineError } from '../errors.ts';

export interface Substitution {
  position_a: number;
  position_b: number;
  token_a: string;
  token_b: string;
}

export interface Alignment {
  method: 'identical' | 'substitution' | 'lcs';
  /** One column per aligned pair or unmatched position, in prompt order. */
  columns: Array<{ a: number | null; b: number | null }>;
  /** A position → column, B position → column. */
  columnOfA: Int32Array;
  columnOfB: Int32Array;
  substitutions: Substitution[];
}

/** The LCS table is capped: above this many cells the middle is matched by position only. */
const MAX_LCS_CELLS = 16_000_000;

function finish(
  method: Alignment['method'],
  pairs: Array<{ a: number | null; b: number | null }>,
  a: readonly string[],
  b: readonly string[],
): Alignment {
  const columnOfA = new Int32Array(a.length).fill(-1);
  const columnOfB = new Int32Array(b.length).fill(-1);
  const substitutions: Substitution[] = [];
  pairs.forEach((p, c) => {
    if (p.a !== null) columnOfA[p.a] = c;
    if (p.b !== null) columnOfB[p.b] = c;
    if (p.a !== null && p.b !== null && a[p.a] !== b[p.b])
      substitutions.push({ position_a: p.a, position_b: p.b, token_a: a[p.a], token_b: b[p.b] });
  });
  return { method, columns: pairs, columnOfA, columnOfB, substitutions };
}

/** Aligns prompt tokens `a` and `b` (see the module comment). */
export function alignPrompts(a: readonly string[], b: readonly string[]): Alignment {
  if (a.length === b.length) {
    const pairs = a.map((_, i) => ({ a: i, b: i }));
    const same = a.every((t, i) => t === b[i]);
    return finish(same ? 'identical' : 'substitution', pairs, a, b);
  }
  let pre = 0;
  while (pre < a.length && pre < b.length && a[pre] === b[pre]) pre++;
  let suf = 0;
  while (suf < a.length - pre && suf < b.length - pre && a[a.length - 1 - suf] === b[b.length - 1 - suf])
    suf++;
  const ma = a.length - pre - suf;
  const mb = b.length - pre - suf;
  // Matches of the middle, as [i, j] pairs of offsets into it.
  const matches: Array<[number, number]> = [];
  if (ma > 0 && mb > 0 && (ma + 1) * (mb + 1) <= MAX_LCS_CELLS) {
    // len[i][j] = LCS length of a-middle[i..] and b-middle[j..] (suffix form: walk forwards).
    const w = mb + 1;
    const len = new Int32Array((ma + 1) * w);
    for (let i = ma - 1; i >= 0; i--) {
      for (let j = mb - 1; j >= 0; j--) {
        len[i * w + j] =
          a[pre + i] === b[pre + j]
            ? len[(i + 1) * w + j + 1] + 1
            : Math.max(len[(i + 1) * w + j], len[i * w + j + 1]);
      }
    }
    let i = 0;
    let j = 0;
    while (i < ma && j < mb) {
      if (a[pre + i] === b[pre + j]) {
        matches.push([i, j]);
        i++;
        j++;
      } else if (len[(i + 1) * w + j] >= len[i * w + j + 1]) i++;
      else j++;
    }
  } else if (ma > 0 && mb > 0) {
    throw new EngineError(
      'argument',
      `prompts of ${a.length} and ${b.length} tokens differ in a middle of ${ma}×${mb} tokens, too long to align`,
      { field: 'prompt_tokens' },
    );
  }
  const pairs: Array<{ a: number | null; b: number | null }> = [];
  for (let k = 0; k < pre; k++) pairs.push({ a: k, b: k });
  let ia = 0;
  let ib = 0;
  const gap = (endA: number, endB: number) => {
    const na = endA - ia;
    const nb = endB - ib;
    if (na === nb) {
      for (let k = 0; k < na; k++) pairs.push({ a: pre + ia + k, b: pre + ib + k });
    } else {
      for (let k = ia; k < endA; k++) pairs.push({ a: pre + k, b: null });
      for (let k = ib; k < endB; k++) pairs.push({ a: null, b: pre + k });
    }
    ia = endA;
    ib = endB;
  };
  for (const [i, j] of matches) {
    gap(i, j);
    pairs.push({ a: pre + i, b: pre + j });
    ia = i + 1;
    ib = j + 1;
  }
  gap(ma, mb);
  for (let k = 0; k < suf; k++) pairs.push({ a: a.length - suf + k, b: b.length - suf + k });
  return finish('lcs', pairs, a, b);
}
