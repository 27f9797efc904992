//! Repro of the full-covariance GPU kernel failure on llvmpipe (work in progress, issue 15):
//! `cargo run --release --example mvn_gpu_repro -- 1x100,15x3` evaluates batches of DxN
//! random far-apart pairs in sequence on one GPU evaluator and prints the worst relative
//! difference from the CPU per measure set; DIAG=1 uses diagonal covariances.
use gaussdiv::*;
struct Rng(u64);
impl Rng { fn next(&mut self) -> f64 { self.0 ^= self.0 << 13; self.0 ^= self.0 >> 7; self.0 ^= self.0 << 17; (self.0 >> 11) as f64 / (1u64 << 52) as f64 - 1.0 } }
fn spd(rng: &mut Rng, d: usize, scale: f64) -> Vec<f64> {
    let b: Vec<f64> = (0..d * d).map(|_| rng.next()).collect();
    let mut a = vec![0.0; d * d];
    for i in 0..d { for j in 0..d {
        let s: f64 = (0..d).map(|k| b[i * d + k] * b[j * d + k]).sum();
        a[i * d + j] = scale * (s + if i == j { 0.5 * d as f64 } else { 0.0 });
    }}
    a
}
fn main() {
    let ev = Evaluator::new(Backend::Gpu).unwrap();
    let cpu = Evaluator::new(Backend::Cpu).unwrap();
    let seq: Vec<(usize, usize)> = std::env::args().nth(1).unwrap().split(',').map(|t| { let mut it = t.split('x'); (it.next().unwrap().parse().unwrap(), it.next().unwrap().parse().unwrap()) }).collect();
    for (rep, &(d, n)) in seq.iter().enumerate() {
        let mut rng = Rng(d as u64 * 31 | 1);
        
        let (mut mu1, mut c1, mut mu2, mut c2) = (vec![], vec![], vec![], vec![]);
        for i in 0..n {
            if std::env::var("DIAG").is_ok() { let mut m = vec![0.0; d*d]; for i in 0..d { m[i*d+i] = 1.0 + i as f64; } if std::env::var("OFF").is_ok() { m[d] = 0.3; m[1] = 0.3; } c1.extend(m); let mut m2 = vec![0.0; d*d]; for i in 0..d { m2[i*d+i] = 3.0 + i as f64; } c2.extend(m2); mu1.extend((0..d).map(|_| rng.next())); mu2.extend((0..d).map(|_| rng.next())); continue; }
            c1.extend(spd(&mut rng, d, 1.0));
            c2.extend(spd(&mut rng, d, if i % 2 == 0 { 3.0 } else { 0.2 }));
            mu1.extend((0..d).map(|_| rng.next()));
            mu2.extend((0..d).map(|_| 2.0 * rng.next()));
        }
        let b = Batch::Mvn(MvnPairs { dims: d, mu1: &mu1, cov1: Covariance::Cov(&c1), mu2: &mu2, cov2: Covariance::Cov(&c2) });
        for metrics in [Metrics::ALL, Metrics::new(&[Metric::Entropy]).unwrap(), Metrics::new(&[Metric::Kl]).unwrap(), Metrics::new(&[Metric::ReverseKl]).unwrap(), Metrics::new(&[Metric::Wasserstein2]).unwrap()] {
            let r = Request::measures(metrics);
            let k = r.values_per_pair();
            let mut a = vec![0.0; k*n];
            let mut g = vec![0.0; k*n];
            cpu.evaluate(b, &r, &mut a).unwrap();
            ev.evaluate(b, &r, &mut g).unwrap();
            let mut f = vec![0.0; k*n];
            Evaluator::new(Backend::Cpu).unwrap().evaluate(b, &r, &mut f).unwrap();
            let wf = a.iter().zip(&f).map(|(x, y)| ((x - y) / x).abs()).fold(0.0, f64::max);
            let mut h = vec![0.0; k*n];
            Evaluator::new(Backend::Gpu).unwrap().evaluate(b, &r, &mut h).unwrap();
            let wh = g.iter().zip(&h).map(|(x, y)| ((x - y) / x).abs()).fold(0.0, f64::max);
            println!("cpu vs fresh cpu {wf:.2e}; gpu vs fresh gpu {wh:.2e}");
            let worst = a.iter().zip(&g).map(|(x, y)| ((x - y) / x).abs()).fold(0.0, f64::max);
            println!("rep {rep} d={d} k={k}: worst rel {worst:.2e} cpu {:?} gpu {:?}", &a[..k.min(10)], &g[..k.min(10)]);
        }
    }
}
