// Entry point of wasm/core.wasm: the phi-accrual detector and the balancer's selection. The package
// instantiates the module once per process; every detector and balancer keeps a context struct and
// its arrays in the shared linear memory and passes the context address to each call.

export { norm_phi } from "./normal";
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
  bal_forget,
  bal_init,
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
