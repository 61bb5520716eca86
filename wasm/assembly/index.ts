// Entry point of wasm/core.wasm: the phi-accrual detector and the balancer's selection. One module,
// instantiated once per detector or balancer (each instance has its own memory and globals).

export { norm_phi } from "./normal";
export { prng_seed } from "./prng";
export {
  det_close,
  det_configure,
  det_estimate,
  det_heartbeat,
  det_layout,
  det_open,
  det_phi,
  det_phi_all,
  det_suspects,
} from "./detector";
export {
  bal_eject,
  bal_ewma,
  bal_finish,
  bal_layout,
  bal_open,
  bal_random,
  bal_select,
  bal_start,
  bal_weight,
} from "./balancer";

/** First free byte after the module's static data (16-aligned): the facade's heap starts here. */
export function heap_base(): usize {
  return (__heap_base + 15) & ~<usize> 15;
}
