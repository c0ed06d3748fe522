/**
 * WebSocket fuzz: malformed and oversized frames sent over a raw TCP socket (a hand-made HTTP
 * upgrade with the token and the Host the server checks) to a real server on 127.0.0.1. Each one
 * closes that connection with the right code, and the server keeps serving: a client connected
 * the whole time still gets answers, a new client connects, and /health answers.
 */
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import readline from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApiClient } from '../../electron/api/contract.ts';
import { WorkbenchService } from '../../electron/api/service.ts';
import { connectApi } from '../../electron/api/transports/node-client.ts';
import {
  MAX_MESSAGE_BYTES,
  type RunningApiServer,
  startApiServer,
} from '../../electron/api/transports/websocket-server.ts';
import { InProcessCompute } from '../../electron/jobs/in-process-compute.ts';
import { Store } from '../../electron/store/store.ts';
import { tempDir } from '../store/helpers.ts';

const tmp = tempDir('cw-ws-fuzz-');
const TOKEN = 'fuzz-token-0123456789abcdef';
let store: Store;
let service: WorkbenchService;
let server: RunningApiServer;
let steady: ApiClient;
const logged: string[] = [];

beforeAll(async () => {
  store = Store.open(path.join(tmp.dir, 'data'));
  service = new WorkbenchService({
    store,
    compute: new InProcessCompute({ cacheRoot: path.join(tmp.dir, 'cache') }),
  }).start();
  server = await startApiServer({
    backend: service,
    host: '127.0.0.1',
    port: 0,
    token: TOKEN,
    log: (l) => logged.push(l),
  });
  steady = await connectApi(server.wsUrl, { token: TOKEN });
});
afterAll(async () => {
  await steady?.close();
  await server?.close();
  await service?.close();
  store?.close();
  tmp.cleanup();
});

const MASK = Buffer.from([0x11, 0x22, 0x33, 0x44]);

/** A frame header (+ payload): `first` is FIN|RSV|opcode; `len` may claim more than `payload`. */
function frame(
  first: number,
  payload: Buffer,
  o: { masked?: boolean; len?: number; withPayload?: boolean } = {},
): Buffer {
  const masked = o.masked ?? true;
  const len = o.len ?? payload.length;
  let head: Buffer;
  if (len < 126) head = Buffer.from([first, (masked ? 0x80 : 0) | len]);
  else if (len < 65536) {
    head = Buffer.alloc(4);
    head[0] = first;
    head[1] = (masked ? 0x80 : 0) | 126;
    head.writeUInt16BE(len, 2);
  } else {
    head = Buffer.alloc(10);
    head[0] = first;
    head[1] = (masked ? 0x80 : 0) | 127;
    head.writeBigUInt64BE(BigInt(len), 2);
  }
  if (o.withPayload === false) return masked ? Buffer.concat([head, MASK]) : head;
  const body = Buffer.from(payload);
  if (masked) for (let i = 0; i < body.length; i++) body[i] ^= MASK[i % 4];
  return Buffer.concat([head, ...(masked ? [MASK] : []), body]);
}

/**
 * Opens a raw upgraded connection, sends `bytes`, and resolves with the status code of the
 * close frame the server sends (null if the socket closed without one).
 */
function fuzz(
  bytes: Buffer,
  opts: { reset?: boolean; port?: number; token?: string | null } = {},
): Promise<number | null> {
  const port = opts.port ?? server.port;
  const token = opts.token === undefined ? TOKEN : opts.token;
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    let buf = Buffer.alloc(0);
    let upgraded = false;
    let done = false;
    const finish = (code: number | null) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      resolve(code);
    };
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error('the server neither closed nor answered within 10 s'));
    }, 10_000);
    sock.on('error', () => finish(null));
    sock.on('close', () => finish(null));
    sock.on('connect', () => {
      sock.write(
        'GET /api HTTP/1.1\r\n' +
          `Host: 127.0.0.1:${port}\r\n` +
          'Upgrade: websocket\r\nConnection: Upgrade\r\n' +
          `Sec-WebSocket-Key: ${crypto.randomBytes(16).toString('base64')}\r\n` +
          'Sec-WebSocket-Version: 13\r\n' +
          (token ? `Authorization: Bearer ${token}\r\n` : '') +
          '\r\n',
      );
    });
    sock.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      if (!upgraded) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const status = buf.subarray(0, end).toString().split('\r\n')[0];
        if (!status.startsWith('HTTP/1.1 101')) return reject(new Error(`upgrade refused: ${status}`));
        upgraded = true;
        buf = buf.subarray(end + 4);
        if (opts.reset) {
          sock.write(bytes);
          sock.resetAndDestroy();
          return finish(null);
        }
        sock.write(bytes);
      }
      // Server frames (unmasked): skip the hello and any other until the close frame.
      for (;;) {
        if (buf.length < 2) return;
        const opcode = buf[0] & 0x0f;
        let len = buf[1] & 0x7f;
        let off = 2;
        if (len === 126) {
          if (buf.length < 4) return;
          len = buf.readUInt16BE(2);
          off = 4;
        } else if (len === 127) {
          if (buf.length < 10) return;
          len = Number(buf.readBigUInt64BE(2));
          off = 10;
        }
        if (buf.length < off + len) return;
        if (opcode === 0x8) return finish(len >= 2 ? buf.readUInt16BE(off) : null);
        buf = buf.subarray(off + len);
      }
    });
  });
}

function health(url = server.url): Promise<number> {
  return new Promise((resolve, reject) => {
    http
      .get(`${url}health`, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      })
      .on('error', reject);
  });
}

const hi = Buffer.from('{"type":"call","id":1,"method":"server.info","params":{}}');
const CASES: Array<{ name: string; bytes: Buffer; codes: number[] }> = [
  {
    name: 'a 2^40 length header',
    bytes: frame(0x81, Buffer.alloc(0), { len: 2 ** 40, withPayload: false }),
    codes: [1009],
  },
  { name: 'invalid UTF-8 text', bytes: frame(0x81, Buffer.from([0xff, 0xfe, 0xc3, 0x28])), codes: [1007] },
  { name: 'opcode 3', bytes: frame(0x83, Buffer.from('x')), codes: [1002] },
  { name: 'reserved control opcode 0xB', bytes: frame(0x8b, Buffer.alloc(0)), codes: [1002] },
  { name: 'an unmasked client frame', bytes: frame(0x81, hi, { masked: false }), codes: [1002] },
  { name: 'RSV1 set (no extension negotiated)', bytes: frame(0xc1, hi), codes: [1002] },
  { name: 'RSV2+RSV3 set', bytes: frame(0xb1, hi), codes: [1002] },
  { name: 'a ping of 126 bytes', bytes: frame(0x89, Buffer.alloc(126, 0x61)), codes: [1002] },
  { name: 'a fragmented ping', bytes: frame(0x09, Buffer.from('p')), codes: [1002] },
  { name: 'a stray continuation frame', bytes: frame(0x80, Buffer.from('xx')), codes: [1002] },
  {
    name: 'a new text frame inside a fragmented message',
    bytes: Buffer.concat([frame(0x01, Buffer.from('{"ty')), frame(0x81, Buffer.from('pe"}'))]),
    codes: [1002],
  },
  {
    name: 'a 513 MiB message (header)',
    bytes: frame(0x81, Buffer.alloc(0), { len: 513 * 2 ** 20, withPayload: false }),
    codes: [1009],
  },
  {
    name: 'fragments adding up past the limit',
    bytes: Buffer.concat([
      frame(0x01, Buffer.alloc(8, 0x20)),
      frame(0x80, Buffer.alloc(0), { len: MAX_MESSAGE_BYTES, withPayload: false }),
    ]),
    codes: [1009],
  },
  { name: 'a close frame with code 0', bytes: frame(0x88, Buffer.from([0, 0])), codes: [1002] },
  { name: 'a close frame of 1 byte', bytes: frame(0x88, Buffer.from([3])), codes: [1002] },
];

describe('WebSocket fuzz: one bad frame closes one connection, never the server', () => {
  it('the largest message allowed is the largest string a request can be decoded to', () => {
    expect(MAX_MESSAGE_BYTES).toBe(2 ** 29 - 24);
    expect(513 * 2 ** 20).toBeGreaterThan(MAX_MESSAGE_BYTES);
  });

  for (const c of CASES) {
    it(`${c.name}: closed with ${c.codes.join('/')}, the server keeps serving`, async () => {
      expect(c.codes).toContain(await fuzz(c.bytes));
      expect((await steady.call('server.info', {})).app).toBe('circuit-workbench');
      const fresh = await connectApi(server.wsUrl, { token: TOKEN });
      try {
        expect((await fresh.call('server.info', {})).app).toBe('circuit-workbench');
      } finally {
        await fresh.close();
      }
      expect(await health()).toBe(200);
    });
  }

  it('a client that resets mid-frame does not take the server down', async () => {
    await fuzz(frame(0x81, Buffer.alloc(0), { len: 1000, withPayload: false }), { reset: true });
    await new Promise((r) => setTimeout(r, 100));
    expect((await steady.call('server.info', {})).app).toBe('circuit-workbench');
    expect(await health()).toBe(200);
  });

  it('the closed connections were logged', () => {
    expect(logged.filter((l) => l.startsWith('closing a connection:')).length).toBeGreaterThanOrEqual(
      CASES.length,
    );
  });

  it('a real `circuit serve` process survives every bad frame and stops cleanly', async () => {
    const root = path.resolve(import.meta.dirname, '../..');
    const child = spawn(
      process.execPath,
      [
        path.join(root, 'bin/circuit.mjs'),
        'serve',
        '--port',
        '0',
        '--data',
        path.join(tmp.dir, 'serve'),
        '--json',
      ],
      { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let exitCode: number | null | undefined;
    child.on('exit', (c) => {
      exitCode = c;
    });
    try {
      const info = await new Promise<{ url: string; ws_url: string }>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('serve did not start')), 30_000);
        readline.createInterface({ input: child.stdout }).once('line', (l) => {
          clearTimeout(timer);
          resolve(JSON.parse(l));
        });
        child.once('exit', (code) => reject(new Error(`serve exited (${code})`)));
      });
      const port = Number(new URL(info.url).port);
      for (const c of CASES) expect(c.codes, c.name).toContain(await fuzz(c.bytes, { port, token: null }));
      expect(exitCode).toBeUndefined(); // still running
      const client = await connectApi(info.ws_url);
      expect((await client.call('server.info', {})).app).toBe('circuit-workbench');
      await client.close();
      expect(await health(info.url)).toBe(200);
    } finally {
      if (exitCode === undefined) child.kill('SIGTERM');
    }
    const code = exitCode !== undefined ? exitCode : await new Promise((r) => child.once('exit', r));
    expect(code).toBe(0);
  }, 60_000);
});
