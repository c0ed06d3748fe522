// Encodes every case of CASES.json with @huggingface/tokenizers (the package the app uses)
// and compares with the ids the Python tokenizer produced.
//   node native/demo-model/check_tokenizer.mjs MODEL_DIR CASES.json
// CASES.json: [{"text": "...", "ids": [2, ...]}]  (ids with <bos>, as encode() adds it)
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';

const [dir, casesPath] = process.argv.slice(2);
const tj = JSON.parse(readFileSync(join(dir, 'tokenizer.json'), 'utf8'));
const tc = JSON.parse(readFileSync(join(dir, 'tokenizer_config.json'), 'utf8'));
const tok = new Tokenizer(tj, tc);
const cases = JSON.parse(readFileSync(casesPath, 'utf8'));
let bad = 0;
for (const c of cases) {
  const got = tok.encode(c.text).ids.map(Number);
  const same = got.length === c.ids.length && got.every((v, i) => v === c.ids[i]);
  if (!same) {
    bad++;
    if (bad <= 5)
      console.log(
        `MISMATCH ${JSON.stringify(c.text)}\n  js ${got}\n  py ${c.ids}\n  js tokens ${tok.encode(c.text).tokens}`,
      );
  }
  const dec = tok.decode(c.ids, { skip_special_tokens: true });
  if (dec !== c.text) {
    bad++;
    if (bad <= 5) console.log(`DECODE ${JSON.stringify(c.text)} -> ${JSON.stringify(dec)}`);
  }
}
const demo = tok.encode('The capital of state containing Dallas is Austin');
console.log(`demo tokens: ${JSON.stringify(demo.tokens)}`);
console.log(`${cases.length} cases, ${bad} mismatches`);
process.exit(bad ? 1 : 0);
