// A plain module worker around the wasm export (as src/edge/entry.js).
import * as wasm from './index.js';

export default {
  fetch(request, env, ctx) {
    return wasm.fetch(request, env, ctx);
  },
};
