// The worker's entry module (bundled by scripts/build.sh): a plain module
// worker whose fetch handler calls the wasm's export directly.
//
// worker-build's entry wraps each request in a WorkerEntrypoint instance
// made through a Proxy, a Proxy per method and an async wrapper; this one
// keeps only what that does for a panic. A panic sets `criticalError`
// (the `worker` crate's hook) and the glue's abort handler marks the
// instance for a reset, which the next call performs: the instance starts
// over with empty memory, as after an isolate restart.
import * as wasm from './index.js';

const state = wasm.__worker_init_state();

function resetIfCritical() {
  if (state.criticalError) {
    console.log('edge-cache: restarting the wasm instance after a panic');
    wasm.__wbg_reset_state();
    state.criticalError = false;
    state.instanceId++;
  }
}

function noteCritical(error) {
  if (error instanceof WebAssembly.RuntimeError) {
    console.error('edge-cache: critical', error);
    state.criticalError = true;
  }
}

addEventListener('error', (event) => noteCritical(event.error));

export default {
  fetch(request, env, ctx) {
    resetIfCritical();
    try {
      return wasm.fetch(request, env, ctx);
    } catch (error) {
      noteCritical(error);
      throw error;
    }
  },
};
