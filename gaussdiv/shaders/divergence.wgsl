// gaussdiv: the measures kernel — every selected measure of every pair.
//
// Assembled (src/gpu/kernel.rs) after a precision prelude, io.wgsl,
// ln_exp.wgsl and measures.wgsl; the same text serves the f32 and the f64
// module.
//
// Entry points:
// * main: an array of pairs at binding 0, the results at binding 1;
// * main_soa: a structure of arrays (four arrays of bit patterns U: mu1, a1,
//   mu2, a2) at bindings 2 to 5, the results at binding 1.
// One invocation per pair.

@group(0) @binding(2) var<storage, read> mu1_in: array<U>;
@group(0) @binding(3) var<storage, read> sigma1_in: array<U>;
@group(0) @binding(4) var<storage, read> mu2_in: array<U>;
@group(0) @binding(5) var<storage, read> sigma2_in: array<U>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = invocation_index(wid, nwg, lid);
    if (i >= arrayLength(&pairs)) {
        return;
    }
    write_row(i, measures(pairs[i]));
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main_soa(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = invocation_index(wid, nwg, lid);
    if (i >= arrayLength(&mu1_in)) {
        return;
    }
    let p = vec4<U>(mu1_in[i], sigma1_in[i], mu2_in[i], sigma2_in[i]);
    write_row(i, measures(p));
}
