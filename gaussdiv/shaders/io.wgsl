// gaussdiv: the interface every kernel shares — the pipeline overrides, the
// pair and result bindings, and the writing of the selected measures.
//
// Part of every module (see src/gpu/kernel.rs), after a precision prelude
// (shaders/prelude_f32.wgsl or prelude_f64.wgsl), which supplies the aliases
// F (the float type) and U (its bit pattern).
//
// KEEP IN SYNC with src/pair.rs (GaussianPair = mu1, a1, mu2, a2 of F: 16
// bytes in f32, 32 in f64 (GaussianPair64), read as bit patterns vec4<U>,
// with a = sigma, sigma^2, ln sigma, ln sigma^2 or 1/sigma^2 by PARAM;
// output = the selected measures in canonical order cross_entropy, kl,
// entropy, entropy_q, reverse_kl, jeffreys, bhattacharyya,
// bhattacharyya_coefficient, hellinger, wasserstein2, one F each) and with
// src/gpu/kernel.rs (the override names and bindings).
//
// The dispatch is a 2-D grid of workgroups (x <=
// max_compute_workgroups_per_dimension); every invocation is bounds-checked
// against the length of its binding (invocation_index).

override WORKGROUP_SIZE: u32 = 256u;
// Parameterisation: 0 sigma, 1 sigma^2, 2 ln sigma, 3 ln sigma^2, 4 1/sigma^2.
override PARAM: u32 = 0u;
override WRITE_CE: bool = true;
override WRITE_KL: bool = true;
override WRITE_ENTROPY: bool = true;
override WRITE_ENTROPY_Q: bool = true;
override WRITE_REVERSE_KL: bool = true;
override WRITE_JEFFREYS: bool = true;
override WRITE_BHATTACHARYYA: bool = true;
override WRITE_BHATTACHARYYA_COEFFICIENT: bool = true;
override WRITE_HELLINGER: bool = true;
override WRITE_WASSERSTEIN2: bool = true;

// Binding 0: the pairs (main, main_grad, the diagonal kernels); binding 1:
// the results (every entry point).
@group(0) @binding(0) var<storage, read> pairs: array<vec4<U>>;
@group(0) @binding(1) var<storage, read_write> results: array<F>;

const PARAM_STD: u32 = 0u;
const PARAM_VAR: u32 = 1u;
const PARAM_LOGSTD: u32 = 2u;
const PARAM_LOGVAR: u32 = 3u;
const PARAM_PRECISION: u32 = 4u;

// Number of selected measures (values per row).
fn selected_count() -> u32 {
    return select(0u, 1u, WRITE_CE) + select(0u, 1u, WRITE_KL) + select(0u, 1u, WRITE_ENTROPY)
        + select(0u, 1u, WRITE_ENTROPY_Q) + select(0u, 1u, WRITE_REVERSE_KL) + select(0u, 1u, WRITE_JEFFREYS)
        + select(0u, 1u, WRITE_BHATTACHARYYA) + select(0u, 1u, WRITE_BHATTACHARYYA_COEFFICIENT)
        + select(0u, 1u, WRITE_HELLINGER) + select(0u, 1u, WRITE_WASSERSTEIN2);
}

// Write the selected measures of row i, canonical order.
fn write_row(i: u32, d: array<F, 10>) {
    write_values(i * selected_count(), d);
}

// Write the selected measures, canonical order, from results[o0].
fn write_values(o0: u32, d: array<F, 10>) {
    var o = o0;
    if (WRITE_CE) {
        results[o] = d[0];
        o = o + 1u;
    }
    if (WRITE_KL) {
        results[o] = d[1];
        o = o + 1u;
    }
    if (WRITE_ENTROPY) {
        results[o] = d[2];
        o = o + 1u;
    }
    if (WRITE_ENTROPY_Q) {
        results[o] = d[3];
        o = o + 1u;
    }
    if (WRITE_REVERSE_KL) {
        results[o] = d[4];
        o = o + 1u;
    }
    if (WRITE_JEFFREYS) {
        results[o] = d[5];
        o = o + 1u;
    }
    if (WRITE_BHATTACHARYYA) {
        results[o] = d[6];
        o = o + 1u;
    }
    if (WRITE_BHATTACHARYYA_COEFFICIENT) {
        results[o] = d[7];
        o = o + 1u;
    }
    if (WRITE_HELLINGER) {
        results[o] = d[8];
        o = o + 1u;
    }
    if (WRITE_WASSERSTEIN2) {
        results[o] = d[9];
    }
}

fn invocation_index(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
    return (wid.y * nwg.x + wid.x) * WORKGROUP_SIZE + lid;
}

// +inf and a quiet NaN built from a run-time value `any` (only its presence
// matters): WGSL makes a constant expression that evaluates to inf or NaN a
// shader-creation error, which Tint (Chrome's compiler) enforces and naga
// does not, so `bitcast<F>(INF_BITS)` must not be a constant expression.
fn run_time_inf(any: F) -> F {
    let b = bitcast<U>(any);
    return bitcast<F>(INF_BITS | (b ^ b));
}
fn run_time_nan(any: F) -> F {
    let b = bitcast<U>(any);
    return bitcast<F>(NAN_BITS | (b ^ b));
}
