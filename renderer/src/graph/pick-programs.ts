/**
 * Sigma 4 compiles two shader programs for every program it draws with: the visible one and a
 * picking twin (ids into an off-screen buffer, read back pixel by pixel on hover and click),
 * and it renders the picking pass on every frame. Canvases that pick on the CPU (canvas.ts)
 * never read that buffer, so for them the twins are not compiled: half of the shader
 * compilation before the first frame (~0.1 s in software GL), and no picking pass per frame.
 *
 * Sigma builds each program through `Program.prototype.getProgramInfo(name, gl, …)` ("normal",
 * then "pick") and only runs the picking pass when a program has a picking twin. The canvas is
 * told apart by its container (marked before sigma is created: programs are built in sigma's
 * constructor, and later ones such as custom layers too). Not in sigma's public types: the
 * e2e checks catch a sigma upgrade that changes this.
 */
import { Program } from 'sigma/rendering';

const cpuPickedContainers = new WeakSet<Element>();

interface ProgramInternals {
  getProgramInfo(name: string, gl: WebGL2RenderingContext, ...rest: unknown[]): unknown;
}

function cpuPicked(gl: WebGL2RenderingContext): boolean {
  const canvas = gl.canvas;
  if (!(canvas instanceof HTMLCanvasElement)) return false;
  for (let el: Element | null = canvas; el; el = el.parentElement)
    if (cpuPickedContainers.has(el)) return true;
  return false;
}

const proto = Program.prototype as unknown as ProgramInternals;
const compileProgram = proto.getProgramInfo;
proto.getProgramInfo = function (this: ProgramInternals, name, gl, ...rest) {
  if (name === 'pick' && cpuPicked(gl)) return null;
  return compileProgram.call(this, name, gl, ...rest);
};

/** Sigma instances created in this container pick on the CPU: their programs get no picking twin. */
export function markCpuPicked(container: Element): void {
  cpuPickedContainers.add(container);
}
