use burn::backend::Autodiff;
use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::{GradientsParams, Optimizer, SgdConfig};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{Distribution, Int, Tensor, TensorData};

fn check<B: AutodiffBackend>(name: &str) {
    let device = Default::default();
    let mut outs = Vec::new();
    for _ in 0..4 {
        B::seed(&device, 3);
        let model = model::ModelConfig::new(28, 10, 2, 10).init::<B>(&device).unwrap();
        let x = Tensor::<B, 3>::random([64, 28, 28], Distribution::Normal(0.0, 1.0), &device);
        let y = Tensor::<B, 1, Int>::from_data(TensorData::new((0..64).map(|i| i % 10).collect::<Vec<i64>>(), [64]), &device);
        let loss = CrossEntropyLossConfig::new().init(&device).forward(model.forward(x), y);
        let grads = loss.backward();
        let g = model.lstm.layers[0].weight_hh.grad(&grads).unwrap();
        let v = g.into_data().to_vec::<f32>().unwrap();
        outs.push(v.iter().map(|f| f.to_bits()).collect::<Vec<_>>());
        let _ = model.num_params();
    }
    let same = outs.iter().all(|o| *o == outs[0]);
    let mut model = model::ModelConfig::new(28, 10, 2, 10).init::<B>(&device).unwrap();
    let x = Tensor::<B, 3>::random([64, 28, 28], Distribution::Normal(0.0, 1.0), &device);
    let y = Tensor::<B, 1, Int>::from_data(TensorData::new((0..64).map(|i| i % 10).collect::<Vec<i64>>(), [64]), &device);
    let mut optim = SgdConfig::new().init::<B, model::LstmClassifier<B>>();
    let start = std::time::Instant::now();
    let steps = 100;
    for _ in 0..steps {
        let loss = CrossEntropyLossConfig::new().init(&device).forward(model.forward(x.clone()), y.clone());
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(0.01, model, grads);
    }
    let secs = start.elapsed().as_secs_f64();
    println!("{name}: deterministic grads {same}; {:.0} train samples/s", (steps * 64) as f64 / secs);
}

fn main() {
    #[cfg(feature = "ndarray")]
    check::<Autodiff<burn::backend::NdArray>>("ndarray");
    #[cfg(feature = "flex")]
    check::<Autodiff<burn::backend::Flex>>("flex");
}
