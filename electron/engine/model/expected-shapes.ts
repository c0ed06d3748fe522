/** The shape config.json implies for each tensor a family's forward graph reads. */
import type { ModelConfig } from '../arch/config.ts';
import type { ModelWeights, NormWeights } from '../arch/family.ts';

export function expectedTensorShapes(cfg: ModelConfig, w: ModelWeights): Map<string, number[]> {
  const d = cfg.hiddenSize;
  const m = cfg.intermediateSize;
  const H = cfg.nHeads;
  const KV = cfg.nKvHeads;
  const hd = cfg.headDim;
  const shapes = new Map<string, number[]>();
  const set = (name: string | undefined, shape: number[]) => {
    if (name) shapes.set(name, shape);
  };
  const norm = (n: NormWeights | undefined) => {
    if (!n) return;
    set(n.weight, [d]);
    set(n.bias, [d]);
  };
  set(w.embed, [cfg.vocabSize, d]);
  set(w.posEmbed, [cfg.maxPositions, d]);
  set(w.lmHead, [cfg.vocabSize, d]);
  norm(w.finalNorm);
  for (const l of w.layers) {
    norm(l.ln1);
    norm(l.ln2);
    norm(l.lnPostAttn);
    norm(l.lnPostFf);
    const a = l.attn;
    if (a.kind === 'fused-conv1d') {
      set(a.qkv, [d, 3 * d]);
      set(a.qkvBias, [3 * d]);
      set(a.o, [d, d]);
      set(a.oBias, [d]);
    } else {
      set(a.q, [H * hd, d]);
      set(a.k, [KV * hd, d]);
      set(a.v, [KV * hd, d]);
      set(a.o, [d, H * hd]);
      set(a.qBias, [H * hd]);
      set(a.kBias, [KV * hd]);
      set(a.vBias, [KV * hd]);
      set(a.oBias, [d]);
      set(a.qNorm, [hd]);
      set(a.kNorm, [hd]);
    }
    const mlp = l.mlp;
    if (mlp.kind === 'conv1d') {
      set(mlp.fcIn, [d, m]);
      set(mlp.fcInBias, [m]);
      set(mlp.fcOut, [m, d]);
      set(mlp.fcOutBias, [d]);
    } else {
      set(mlp.gate, [m, d]);
      set(mlp.up, [m, d]);
      set(mlp.down, [d, m]);
    }
  }
  return shapes;
}
