// gaussdiv: the pairwise kernel — every p_i against every q_j (N x M cells,
// row-major), from the two arrays of Gaussians themselves (mu, a: 8 bytes
// each in f32, 16 in f64), so nothing but the output crosses the bus.
//
// Assembled (src/gpu/kernel.rs) after a precision prelude, io.wgsl,
// ln_exp.wgsl and measures.wgsl (uses the overrides, binding 1 `results`,
// measures(), write_values(), selected_count() and invocation_index()); the
// same text serves the f32 and the f64 module.
//
// KEEP IN SYNC with src/gpu/pairwise.rs (PairwiseBlock: 32 bytes, the
// uniform below, the same in both precisions; bindings 1, 6, 7, 8 of the
// pairwise bind group layout) and src/pair.rs (Gaussian = mu, a).

// One dispatch: cells c < cells of the block starting at (row0, col0), `cols`
// columns wide; cell c writes its measures from results[out_base + c * k].
struct PairwiseBlock {
    row0: u32,
    col0: u32,
    cols: u32,
    cells: u32,
    out_base: u32,
    pad0: u32,
    pad1: u32,
    pad2: u32,
}

@group(0) @binding(6) var<storage, read> p_in: array<vec2<U>>;
@group(0) @binding(7) var<storage, read> q_in: array<vec2<U>>;
@group(0) @binding(8) var<uniform> block: PairwiseBlock;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main_pairwise(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let c = invocation_index(wid, nwg, lid);
    if (c >= block.cells) {
        return;
    }
    let r = c / block.cols;
    let i = block.row0 + r;
    let j = block.col0 + (c - r * block.cols);
    if (i >= arrayLength(&p_in) || j >= arrayLength(&q_in)) {
        return;
    }
    let p = p_in[i];
    let q = q_in[j];
    write_values(block.out_base + c * selected_count(), measures(vec4<U>(p.x, p.y, q.x, q.y)));
}
