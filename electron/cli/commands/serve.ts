/**
 * `circuit serve`: the backend without Electron — the API over WebSocket (/api) and the built
 * UI (renderer/dist, built on first use from a source checkout) over HTTP. Loopback only unless --host says otherwise, and
 * then a token is required (generated and printed unless --token or $CIRCUIT_TOKEN gives one).
 */
import path from 'node:path';
import { warmModelCheckThread } from '../../api/model-check.ts';
import { WorkbenchService } from '../../api/service.ts';
import { isLoopbackHost, startApiServer } from '../../api/transports/websocket-server.ts';
import { EngineError } from '../../engine/errors.ts';
import type { ComputeBackend } from '../../jobs/compute-backend.ts';
import { InProcessCompute } from '../../jobs/in-process-compute.ts';
import { PoolCompute } from '../../jobs/pool-compute.ts';
import { resolveDataDir } from '../../store/data-dir.ts';
import { Store } from '../../store/store.ts';
import { parseFlags } from '../args.ts';
import { DEFAULT_UI_DIR, prepareUi } from './serve-ui.ts';

export const DEFAULT_PORT = 7411;

const HELP = `usage: circuit serve [--port ${DEFAULT_PORT}] [--host 127.0.0.1] [--data DIR] [--token TOKEN]
       [--allow-origin URL]... [--ui DIR] [--no-ui-build] [--in-process] [--json]

Serves the API over WebSocket at ws://HOST:PORT/api and the built UI (renderer/dist) at
http://HOST:PORT/. When renderer/dist is missing in a source checkout it is built first
(npm run build:ui, once); --no-ui-build (or --json, for scripts) serves the API without it. Binding anything but loopback requires a token: one is generated and printed
unless --token (or $CIRCUIT_TOKEN) sets it; clients send "Authorization: Bearer TOKEN" or
?token=TOKEN. Browsers may connect only from the server's own origin or an --allow-origin.
--port 0 picks a free port. --json prints one JSON line {url, ws_url, port, token, data} once
listening. The library is in --data DIR (default $CIRCUIT_DATA_DIR, else
~/.local/share/circuit-workbench). Traces and re-pruning run on worker threads (the job runner);
--in-process runs them on the server's own thread instead (debugging). Stop with Ctrl-C.`;

export async function serveCommand(argv: string[]): Promise<number> {
  const flags = parseFlags(argv, {
    port: { type: 'string' },
    host: { type: 'string' },
    data: { type: 'string' },
    token: { type: 'string' },
    'allow-origin': { type: 'string', multiple: true },
    ui: { type: 'string' },
    'in-process': { type: 'boolean' },
    'no-ui-build': { type: 'boolean' },
    json: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  });
  if (flags.help) {
    console.log(HELP);
    return 0;
  }
  const port = flags.port === undefined ? DEFAULT_PORT : Number(flags.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new EngineError('argument', `--port must be an integer in [0, 65535], got "${flags.port}"`, {
      field: 'port',
    });
  }
  const host = flags.host ?? '127.0.0.1';
  const token = flags.token ?? process.env.CIRCUIT_TOKEN ?? null;
  if (token !== null && token.length < 16) {
    throw new EngineError('argument', '--token must be at least 16 characters', { field: 'token' });
  }
  for (const o of flags['allow-origin'] ?? []) {
    if (!/^https?:\/\/[^/\s]+$/.test(o)) {
      throw new EngineError(
        'argument',
        `--allow-origin must be an origin like http://localhost:5173, got "${o}"`,
        {
          field: 'allow-origin',
        },
      );
    }
  }
  const dataDir = resolveDataDir(flags.data);
  const uiDir = flags.ui ? path.resolve(flags.ui) : DEFAULT_UI_DIR;
  const log = (line: string) => console.error(line);
  const uiMissing = await prepareUi(uiDir, {
    explicit: flags.ui !== undefined,
    build: !flags.json && !flags['no-ui-build'],
    log,
  });
  if (uiMissing && flags.json) log(`ui: ${uiMissing}`);

  const store = Store.open(dataDir);
  const compute: ComputeBackend = flags['in-process']
    ? new InProcessCompute({ onWarning: (m) => log(`warning: ${m}`) })
    : new PoolCompute();
  const service = new WorkbenchService({
    store,
    compute,
    onBackgroundError: (e) => log(`error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`),
  }).start();
  warmModelCheckThread(); // the first model registration then need not wait seconds for it
  let server: Awaited<ReturnType<typeof startApiServer>>;
  try {
    server = await startApiServer({
      backend: service,
      host,
      port,
      token,
      allowedOrigins: flags['allow-origin'],
      staticDir: uiMissing ? undefined : uiDir,
      log,
    });
  } catch (e) {
    await service.close();
    store.close();
    throw e;
  }
  // Listening before the address is printed: a caller may signal as soon as it reads it.
  const stopped = new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  if (flags.json) {
    console.log(
      JSON.stringify({
        url: server.url,
        ws_url: server.wsUrl,
        port: server.port,
        token: server.token,
        data: dataDir,
      }),
    );
  } else {
    console.log('Circuit Workbench server');
    console.log(`  data   ${dataDir}`);
    console.log(`  api    ${server.wsUrl}`);
    console.log(
      `  ui     ${server.servesUi ? server.url + (server.token ? `?token=${server.token}` : '') : (uiMissing ?? `not built (${uiDir} is missing)`)}`,
    );
    if (server.token) {
      console.log(`  token  ${server.token}`);
      if (!isLoopbackHost(host)) console.log(`  (bound to ${host}: every client must present this token)`);
    }
    console.log('Press Ctrl-C to stop.');
  }
  await stopped;
  log('stopping…');
  await server.close();
  await service.close();
  store.close();
  return 0;
}
