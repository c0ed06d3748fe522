// `node --import ./register.mjs out/app/main.mjs`: installs electron-hooks.mjs.
import { register } from 'node:module';

register('./electron-hooks.mjs', import.meta.url);
