/**
 * A full-screen translucent layer (a custom sigma layer program) drawn between the resting
 * items and the highlighted ones: hovering dims the whole graph in O(1) — no node or edge has
 * to be restyled, only the hovered neighbourhood moves to the top depth layers. It blends over
 * the resting items (they stay visible, lighter), never replaces them.
 */
const VERT = `#version 300 es
void main() {
  vec2 p = vec2(float((gl_VertexID << 1) & 2), float(gl_VertexID & 2));
  gl_Position = vec4(p * 2.0 - 1.0, 0.0, 1.0);
}`;

const FRAG = `#version 300 es
precision mediump float;
uniform vec4 u_color;
out vec4 color;
void main() { color = u_color; }`;

export interface Veil {
  render(): void;
  kill(): void;
}

export function createVeil(
  gl: WebGL2RenderingContext,
  isOn: () => boolean,
  rgba: [number, number, number, number],
): Veil {
  const compile = (type: number, src: string) => {
    const s = gl.createShader(type) as WebGLShader;
    gl.shaderSource(s, src);
    gl.compileShader(s);
    if (!gl.getShaderParameter(s, gl.COMPILE_STATUS))
      throw new Error(`veil shader: ${gl.getShaderInfoLog(s)}`);
    return s;
  };
  const vs = compile(gl.VERTEX_SHADER, VERT);
  const fs = compile(gl.FRAGMENT_SHADER, FRAG);
  const program = gl.createProgram() as WebGLProgram;
  gl.attachShader(program, vs);
  gl.attachShader(program, fs);
  gl.linkProgram(program);
  if (!gl.getProgramParameter(program, gl.LINK_STATUS))
    throw new Error(`veil program: ${gl.getProgramInfoLog(program)}`);
  const uColor = gl.getUniformLocation(program, 'u_color');
  const vao = gl.createVertexArray();
  // Premultiplied, as sigma blends (ONE, ONE_MINUS_SRC_ALPHA).
  const [r, g, b, a] = rgba;
  return {
    render() {
      if (!isOn()) return;
      const prevProgram = gl.getParameter(gl.CURRENT_PROGRAM) as WebGLProgram | null;
      const prevVao = gl.getParameter(gl.VERTEX_ARRAY_BINDING) as WebGLVertexArrayObject | null;
      const prevFb = gl.getParameter(gl.FRAMEBUFFER_BINDING) as WebGLFramebuffer | null;
      const depthTest = gl.isEnabled(gl.DEPTH_TEST);
      const blend = gl.isEnabled(gl.BLEND);
      const srcRgb = gl.getParameter(gl.BLEND_SRC_RGB) as number;
      const dstRgb = gl.getParameter(gl.BLEND_DST_RGB) as number;
      const srcA = gl.getParameter(gl.BLEND_SRC_ALPHA) as number;
      const dstA = gl.getParameter(gl.BLEND_DST_ALPHA) as number;
      gl.bindFramebuffer(gl.FRAMEBUFFER, null);
      if (depthTest) gl.disable(gl.DEPTH_TEST);
      // Blend over what is drawn: without it the veil replaces every pixel, and its
      // premultiplied white composites as pure white over the page (hover hid the graph).
      gl.enable(gl.BLEND);
      gl.blendFunc(gl.ONE, gl.ONE_MINUS_SRC_ALPHA);
      gl.useProgram(program);
      gl.bindVertexArray(vao);
      gl.uniform4f(uColor, r * a, g * a, b * a, a);
      gl.drawArrays(gl.TRIANGLES, 0, 3);
      gl.bindVertexArray(prevVao);
      gl.useProgram(prevProgram);
      gl.bindFramebuffer(gl.FRAMEBUFFER, prevFb);
      if (depthTest) gl.enable(gl.DEPTH_TEST);
      if (!blend) gl.disable(gl.BLEND);
      gl.blendFuncSeparate(srcRgb, dstRgb, srcA, dstA);
    },
    kill() {
      gl.deleteProgram(program);
      gl.deleteShader(vs);
      gl.deleteShader(fs);
      gl.deleteVertexArray(vao);
    },
  };
}
