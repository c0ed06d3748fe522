/**
 * Registered models (a checkpoint folder + a transcoder folder, with the validation verdict
 * and a content hash) and the transcoder sets they use (identified by content, so labels
 * follow a set wherever its folder lives).
 */
import { parseJson } from './blobs.ts';
import type { Db } from './database.ts';
import { notFound } from './errors.ts';
import type { ModelRecord, ModelValidation, TranscoderSetRecord } from './types.ts';

export interface TranscoderSetInput {
  contentHash: string;
  dir: string;
  kind: string;
  nLayers: number;
  dModel: number;
  dTranscoder: number;
}

export interface ModelInput {
  name: string;
  checkpointDir: string;
  transcoderDir: string;
  /** Null when the transcoder folder could not be read. */
  transcoderSet: TranscoderSetInput | null;
  contentHash: string | null;
  family: string | null;
  nLayers: number | null;
  validation: ModelValidation;
}

interface SetRow {
  id: number;
  content_hash: string;
  dir: string;
  kind: string;
  n_layers: number;
  d_model: number;
  d_transcoder: number;
  created_at: number;
}

interface ModelRow {
  id: number;
  name: string;
  checkpoint_dir: string;
  transcoder_dir: string;
  transcoder_set_id: number | null;
  content_hash: string | null;
  family: string | null;
  n_layers: number | null;
  valid: number;
  validation: string;
  created_at: number;
  validated_at: number;
}

const setRecord = (r: SetRow): TranscoderSetRecord => ({
  id: r.id,
  contentHash: r.content_hash,
  dir: r.dir,
  kind: r.kind,
  nLayers: r.n_layers,
  dModel: r.d_model,
  dTranscoder: r.d_transcoder,
  createdAt: r.created_at,
});

const modelRecord = (r: ModelRow): ModelRecord => ({
  id: r.id,
  name: r.name,
  checkpointDir: r.checkpoint_dir,
  transcoderDir: r.transcoder_dir,
  transcoderSetId: r.transcoder_set_id,
  contentHash: r.content_hash,
  family: r.family,
  nLayers: r.n_layers,
  valid: r.valid === 1,
  validation: parseJson<ModelValidation>(r.validation)!,
  createdAt: r.created_at,
  validatedAt: r.validated_at,
});

export class ModelRepository {
  constructor(
    private readonly db: Db,
    private readonly now: () => number,
  ) {}

  /** The set with this content hash (its folder updated to `dir`), created if new. */
  ensureTranscoderSet(s: TranscoderSetInput): TranscoderSetRecord {
    return this.db
      .transaction(() => {
        const existing = this.db
          .prepare('SELECT * FROM transcoder_sets WHERE content_hash = ?')
          .get(s.contentHash) as SetRow | undefined;
        if (existing) {
          if (existing.dir !== s.dir)
            this.db.prepare('UPDATE transcoder_sets SET dir = ? WHERE id = ?').run(s.dir, existing.id);
          return setRecord({ ...existing, dir: s.dir });
        }
        const id = this.db
          .prepare(
            `INSERT INTO transcoder_sets (content_hash, dir, kind, n_layers, d_model, d_transcoder, created_at)
             VALUES (?, ?, ?, ?, ?, ?, ?)`,
          )
          .run(s.contentHash, s.dir, s.kind, s.nLayers, s.dModel, s.dTranscoder, this.now()).lastInsertRowid;
        return this.getTranscoderSet(Number(id));
      })
      .immediate();
  }

  findTranscoderSet(id: number): TranscoderSetRecord | null {
    const r = this.db.prepare('SELECT * FROM transcoder_sets WHERE id = ?').get(id) as SetRow | undefined;
    return r ? setRecord(r) : null;
  }

  getTranscoderSet(id: number): TranscoderSetRecord {
    const s = this.findTranscoderSet(id);
    if (!s) throw notFound('transcoder set', id);
    return s;
  }

  listTranscoderSets(): TranscoderSetRecord[] {
    return (this.db.prepare('SELECT * FROM transcoder_sets ORDER BY id').all() as SetRow[]).map(setRecord);
  }

  /** Registers (or re-validates) the model of these two folders. */
  upsert(m: ModelInput): ModelRecord {
    return this.db
      .transaction(() => {
        const setId = m.transcoderSet ? this.ensureTranscoderSet(m.transcoderSet).id : null;
        const t = this.now();
        const existing = this.db
          .prepare('SELECT id FROM models WHERE checkpoint_dir = ? AND transcoder_dir = ?')
          .pluck()
          .get(m.checkpointDir, m.transcoderDir) as number | undefined;
        const validation = JSON.stringify(m.validation);
        if (existing !== undefined) {
          this.db
            .prepare(
              `UPDATE models SET name = ?, transcoder_set_id = ?, content_hash = ?, family = ?, n_layers = ?,
               valid = ?, validation = ?, validated_at = ? WHERE id = ?`,
            )
            .run(
              m.name,
              setId,
              m.contentHash,
              m.family,
              m.nLayers,
              m.validation.valid ? 1 : 0,
              validation,
              t,
              existing,
            );
          return this.get(existing);
        }
        const id = this.db
          .prepare(
            `INSERT INTO models (name, checkpoint_dir, transcoder_dir, transcoder_set_id, content_hash, family,
             n_layers, valid, validation, created_at, validated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
          )
          .run(
            m.name,
            m.checkpointDir,
            m.transcoderDir,
            setId,
            m.contentHash,
            m.family,
            m.nLayers,
            m.validation.valid ? 1 : 0,
            validation,
            t,
            t,
          ).lastInsertRowid;
        return this.get(Number(id));
      })
      .immediate();
  }

  list(): ModelRecord[] {
    return (this.db.prepare('SELECT * FROM models ORDER BY id').all() as ModelRow[]).map(modelRecord);
  }

  find(id: number): ModelRecord | null {
    const r = this.db.prepare('SELECT * FROM models WHERE id = ?').get(id) as ModelRow | undefined;
    return r ? modelRecord(r) : null;
  }

  get(id: number): ModelRecord {
    const m = this.find(id);
    if (!m) throw notFound('model', id);
    return m;
  }

  rename(id: number, name: string): ModelRecord {
    this.get(id);
    this.db.prepare('UPDATE models SET name = ? WHERE id = ?').run(name, id);
    return this.get(id);
  }

  /** Unregisters the model; its traces stay (their model becomes unknown). */
  delete(id: number): void {
    if (this.db.prepare('DELETE FROM models WHERE id = ?').run(id).changes === 0) throw notFound('model', id);
  }
}
