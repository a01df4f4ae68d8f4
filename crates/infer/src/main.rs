//! `infer`: evaluate a trained run on MNIST, classify digit pictures, serve the draw-a-digit page, import PyTorch weights.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use backend::{DeviceKind, Inference};
use burn::data::dataloader::DataLoader;
use burn::data::dataset::Dataset;
use clap::{Parser, Subcommand};
use data::{DataSource, EpochLoader, MnistFiles, SequenceBatch, Split, TsDataset, TsFiles};
use infer::{
    Prediction, Run, import_pytorch, predict, predict_sequences, preprocess, report, serve,
};
use model::ctc::Decoding;

/// Use trained recurrent sequence models: evaluate, predict (.ts sequences, or digit pictures), generate text, transcribe words, serve a draw-a-digit page, import from PyTorch.
#[derive(Parser)]
#[command(version)]
struct Args {
    #[command(subcommand)]
    command: Command,
    /// Device kind for the wgpu backend (the CPU backends take auto or cpu).
    #[arg(long, global = true, value_enum, default_value_t = DeviceKind::Auto)]
    device: DeviceKind,
}

#[derive(Subcommand)]
enum Command {
    /// A run's model on its test set: a `.ts` run's *_TEST.ts or the 10 000 MNIST test images
    /// (accuracy, loss), a language model's held-out text (nats and bits per character, perplexity),
    /// or a transcriber's test words (word and phoneme error rates).
    Eval {
        /// The run directory (written by `train` or `import-pytorch`).
        #[arg(long, value_name = "DIR", default_value = "artifacts/reference")]
        run: PathBuf,
        /// The data directory: MNIST's IDX files (else the run's data.dir, MNIST_DIR, the cache that
        /// `train` downloads into), or a `.ts` run's dataset directory (else the run's data.dir).
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
        /// Images per batch (the result does not depend on it) [default: 1000]; for a text run, the
        /// streams the held-out text is cut into [default: the run's eval_batch_size, as training
        /// measured it].
        #[arg(long)]
        batch_size: Option<usize>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// For a transcriber: decode by prefix beam search of this width instead of greedily.
        #[arg(long, value_name = "N")]
        beam: Option<usize>,
        /// For a transcriber: evaluate on the validation words instead of the test words (to
        /// choose the decoding there, not on the test words).
        #[arg(long)]
        validation: bool,
    },
    /// Classify pictures of single digits (PNG or JPEG, any size), or, for a run trained on `.ts`
    /// data, every example of `.ts` files (printed with the run's class names).
    ///
    /// Pictures should show one digit, light on a dark background like MNIST (pass --invert for dark
    /// ink on light paper). They are converted the way MNIST was made: grey levels, the digit scaled
    /// into a 20x20 box and centred by its centre of mass in a 28x28 image.
    Predict {
        /// The run directory.
        #[arg(long, value_name = "DIR", default_value = "artifacts/reference")]
        run: PathBuf,
        /// Picture files, or `.ts` files for a run trained on `.ts` data.
        #[arg(value_name = "FILE", required_unless_present = "index")]
        images: Vec<PathBuf>,
        /// Dark digits on a light background: invert before converting.
        #[arg(long)]
        invert: bool,
        /// Classify MNIST test image N instead (needs MNIST, see eval's --data-dir).
        #[arg(long, value_name = "N", conflicts_with = "images")]
        index: Option<usize>,
        /// Directory holding the MNIST IDX files, for --index.
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Draw the run's curves (curves.png) and test-set confusion matrix (confusion.png) into its directory.
    Report {
        /// The run directory.
        #[arg(long, value_name = "DIR", default_value = "artifacts/reference")]
        run: PathBuf,
        /// Directory holding the MNIST IDX files (for the confusion matrix).
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
    },
    /// Serve a draw-a-digit web page and a JSON API (POST /api/predict, GET /api/health) for a run's model.
    ///
    /// The page shows the prediction, the ten probabilities and how the prediction evolves as the
    /// network reads the drawing row by row. Pictures sent to the API are converted like `predict` does.
    Serve {
        /// The run directory.
        #[arg(long, value_name = "DIR", default_value = "artifacts/reference")]
        run: PathBuf,
        /// Port to listen on (0 picks a free one; the address is printed).
        #[arg(long, default_value_t = 8080)]
        port: u16,
        /// Address to listen on; the default keeps the server to this machine.
        #[arg(long, default_value = "127.0.0.1")]
        host: IpAddr,
    },
    /// Write text with a character language model run, one character at a time, as it is drawn.
    Generate {
        /// The run directory (trained on a text).
        #[arg(long, value_name = "DIR")]
        run: PathBuf,
        /// Text the model reads before it writes [default: a newline].
        #[arg(long, value_name = "TEXT")]
        prime: Option<String>,
        /// Characters to write.
        #[arg(long, value_name = "N", default_value_t = 500)]
        length: usize,
        /// Softmax temperature: below 1 more conservative, above 1 more adventurous.
        #[arg(long, value_name = "T", default_value_t = 1.0)]
        temperature: f64,
        /// Draw only from the K most likely characters.
        #[arg(long, value_name = "K")]
        top_k: Option<usize>,
        /// Seed of the draws: the same seed writes the same text.
        #[arg(long, value_name = "S", default_value_t = 0)]
        seed: u64,
    },
    /// Transcribe words with a CTC run trained on a pronouncing dictionary: one line per word,
    /// `word<TAB>PH1 PH2 …`.
    Transcribe {
        /// The run directory (trained with data.source "pronunciations").
        #[arg(long, value_name = "DIR")]
        run: PathBuf,
        /// Words to transcribe.
        #[arg(value_name = "WORD", required_unless_present = "file")]
        words: Vec<String>,
        /// A file of words, one a line (blank lines skipped).
        #[arg(long, value_name = "FILE", conflicts_with = "words")]
        file: Option<PathBuf>,
        /// Prefix beam search of this width instead of the best path.
        #[arg(long, value_name = "N")]
        beam: Option<usize>,
        /// With --beam, the N best transcriptions of each word (one line each, with its log-probability).
        #[arg(long, value_name = "N", default_value_t = 1, requires = "beam")]
        n_best: usize,
        /// Print JSON lines instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Turn a PyTorch state_dict (safetensors, or .pt/.pth from torch.save; names of nn.LSTM/GRU/RNN + fc) into a run directory.
    ImportPytorch {
        /// The `.safetensors` (or `.pt`/`.pth`) file.
        file: PathBuf,
        /// The run directory to write.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// A character language model's vocabulary (`{"chars": ["\n", " ", …]}`, in token-id order),
        /// written as the run's vocab.json.
        #[arg(long, value_name = "FILE")]
        vocab: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    backend::retain_freed_memory();
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> anyhow::Result<()> {
    let device = backend::device(args.device)?;
    match args.command {
        Command::Eval {
            run,
            data_dir,
            batch_size,
            json,
            beam,
            validation,
        } => {
            if batch_size == Some(0) {
                bail!("--batch-size must be at least 1");
            }
            if beam == Some(0) {
                bail!("--beam must be at least 1");
            }
            let run = Run::open(&run)?;
            if (beam.is_some() || validation) && !run.is_transcription() {
                bail!(
                    "--beam and --validation apply to transcribers; {} is not one",
                    run.dir.display()
                );
            }
            let model = run.load_model::<Inference>(&device)?;
            if run.is_transcription() {
                use infer::transcription::HeldApart;
                let words = if validation {
                    HeldApart::Validation
                } else {
                    HeldApart::Test
                };
                let decoding = beam.map_or(Decoding::Greedy, Decoding::Beam);
                let (path, result) = infer::transcription::evaluate(
                    &run,
                    &model,
                    data_dir.as_deref(),
                    batch_size.or(run.eval_batch_size).unwrap_or(256),
                    words,
                    decoding,
                    &device,
                )?;
                let decoded = match decoding {
                    Decoding::Greedy => "greedy".to_string(),
                    Decoding::Beam(width) => format!("beam {width}"),
                };
                let set = words.name();
                let per = result.token_error_rate.unwrap_or(f64::NAN);
                if json {
                    println!(
                        "{}",
                        serde_json::json!({"word_error_rate": 100.0 - result.accuracy, "phoneme_error_rate": per, "loss": result.loss, "words": result.items, "set": set, "decoding": decoded, "dictionary": path, "backend": backend::NAME})
                    );
                } else {
                    println!("word error rate: {:.2}%", 100.0 - result.accuracy);
                    println!("phoneme error rate: {per:.2}%");
                    println!("CTC loss: {:.4}", result.loss);
                    println!(
                        "{set} words: {} (of {}, {decoded})",
                        result.items,
                        path.display()
                    );
                }
                return Ok(());
            }
            if run.is_text() {
                let (path, tokens) = infer::text::test_tokens(&run, data_dir.as_deref())?;
                let window = run.data.text.as_ref().map_or(128, |t| t.window);
                let streams = batch_size.or(run.eval_batch_size).unwrap_or(64);
                let result = infer::text::evaluate_text(&model, tokens, streams, window, &device);
                if json {
                    println!(
                        "{}",
                        serde_json::json!({"loss": result.loss, "nats_per_char": result.loss, "bits_per_char": result.bits(), "perplexity": result.perplexity(), "accuracy": result.accuracy, "items": result.items, "text": path, "backend": backend::NAME})
                    );
                } else {
                    println!("loss: {:.4} nats/char", result.loss);
                    println!("bits: {:.4} bits/char", result.bits());
                    println!("perplexity: {:.3}", result.perplexity());
                    println!("next-character accuracy: {:.2}%", result.accuracy);
                    println!(
                        "characters predicted: {} (the last part of {})",
                        result.items,
                        path.display()
                    );
                }
                return Ok(());
            }
            let loader = test_loader(&run, data_dir, batch_size.unwrap_or(1000), &device)?;
            let result = model.evaluate(loader.iter().map(|b| (b.sequences, b.lengths, b.targets)));
            if json {
                println!(
                    "{}",
                    serde_json::json!({"accuracy": result.accuracy, "loss": result.loss, "items": result.items, "backend": backend::NAME})
                );
            } else {
                println!("accuracy: {:.2}%", result.accuracy);
                println!("loss: {:.4}", result.loss);
                println!("examples: {}", result.items);
            }
        }
        Command::Predict {
            run,
            images,
            invert,
            index,
            data_dir,
            json,
        } => {
            let run = Run::open(&run)?;
            if run.is_text() {
                bail!(
                    "{} is a language model: it writes text rather than classify (use `infer generate --run {}`)",
                    run.dir.display(),
                    run.dir.display()
                );
            }
            let model = run.load_model::<Inference>(&device)?;
            if let Some(info) = &run.sequences {
                if index.is_some() || invert {
                    bail!(
                        "--index and --invert are for MNIST runs; {} was trained on .ts data: pass .ts files",
                        run.dir.display()
                    );
                }
                for path in &images {
                    let file = TsDataset::read_with(path, run.data.missing)?;
                    info.check(&file, path)?;
                    let predictions = predict_sequences(&model, info, &file.examples, 256, &device);
                    // Each example named by its line in the file, as the reader's errors are.
                    for (example, prediction) in file.examples.iter().zip(&predictions) {
                        let name = format!("{}:{}", path.display(), example.line);
                        print_sequence_prediction(&name, prediction, &info.classes, json);
                    }
                }
                return Ok(());
            }
            let (names, pixels): (Vec<String>, Vec<Vec<u8>>) = match index {
                Some(index) => {
                    let test = test_set(&run, data_dir)?;
                    let item = test.get(index).with_context(|| {
                        format!(
                            "--index {index} is out of range: the test set has {} images",
                            test.len()
                        )
                    })?;
                    (
                        vec![format!("test image {index} (label {})", item.label)],
                        vec![item.pixels],
                    )
                }
                None => {
                    let mut loaded = Vec::new();
                    for path in &images {
                        loaded.push((
                            path.display().to_string(),
                            preprocess::load_image(path, invert)?,
                        ));
                    }
                    loaded.into_iter().unzip()
                }
            };
            let side = preprocess::SIDE;
            let batcher = run.batcher(side, side)?;
            let predictions = predict(&model, &batcher, &pixels, &device);
            for (name, prediction) in names.iter().zip(&predictions) {
                print_prediction(name, prediction, json);
            }
        }
        Command::Report { run, data_dir } => {
            let run = Run::open(&run)?;
            let metrics = run.dir.join("metrics.json");
            if metrics.is_file() {
                let curves = run.dir.join("curves.png");
                report::draw_curves(&report::read_curves(&metrics)?, &curves)?;
                println!("{}", curves.display());
            } else {
                eprintln!(
                    "note: {} has no metrics.json (not trained here): no curves",
                    run.dir.display()
                );
            }
            if run.is_text() {
                // A language model has no class confusion to draw: its curves are its report.
                return Ok(());
            }
            let model = run.load_model::<Inference>(&device)?;
            let loader = test_loader(&run, data_dir, 1000, &device)?;
            let matrix = report::confusion_matrix(
                &model,
                loader.iter().map(|b| (b.sequences, b.lengths, b.targets)),
            );
            let confusion = run.dir.join("confusion.png");
            report::draw_confusion(&matrix, &confusion)?;
            println!("{}", confusion.display());
        }
        Command::Generate {
            run,
            prime,
            length,
            temperature,
            top_k,
            seed,
        } => {
            let sampling = infer::text::Sampling {
                temperature,
                top_k,
                seed,
            };
            sampling.validate()?;
            if length == 0 {
                bail!(infer::text::GenerateError::Length);
            }
            let run = Run::open(&run)?;
            if !run.is_text() {
                bail!(
                    "{} is not a language model (its data.source is \"{}\"); generate writes with runs trained on a text",
                    run.dir.display(),
                    run.data.source.name()
                );
            }
            let vocabulary = run.vocabulary()?;
            let prime = match prime {
                Some(prime) if prime.is_empty() => {
                    bail!("--prime is empty: give at least one character, or leave it out")
                }
                Some(prime) => prime,
                None if vocabulary.id('\n').is_some() => "\n".to_string(),
                None => vocabulary.char(0).to_string(),
            };
            let ids = vocabulary.encode(&prime, "--prime")?;
            let model = run.load_model::<Inference>(&device)?;
            use std::io::Write;
            let stdout = std::io::stdout();
            let mut out = stdout.lock();
            write!(out, "{prime}")?;
            let mut failed = None;
            infer::text::generate(&model, &vocabulary, &ids, length, sampling, &device, |c| {
                if failed.is_none() {
                    let mut buf = [0u8; 4];
                    failed = out
                        .write_all(c.encode_utf8(&mut buf).as_bytes())
                        .and_then(|()| out.flush())
                        .err();
                }
            });
            if let Some(error) = failed {
                return Err(error).context("cannot write to stdout");
            }
            writeln!(out)?;
        }
        Command::Transcribe {
            run,
            words,
            file,
            beam,
            n_best,
            json,
        } => {
            let run = Run::open(&run)?;
            if !run.is_transcription() {
                bail!(
                    "{} is not a transcription run (its data.source is \"{}\"); transcribe uses runs trained on a pronouncing dictionary",
                    run.dir.display(),
                    run.data.source.name()
                );
            }
            let words = match file {
                Some(file) => std::fs::read_to_string(&file)
                    .with_context(|| format!("cannot read {}", file.display()))?
                    .lines()
                    .map(str::trim)
                    .filter(|w| !w.is_empty())
                    .map(str::to_string)
                    .collect(),
                None => words,
            };
            let model = run.load_model::<Inference>(&device)?;
            let found =
                infer::transcription::transcribe(&run, &model, &words, beam, n_best, &device)?;
            for transcription in found {
                for (phonemes, log_prob) in &transcription.hypotheses {
                    if json {
                        println!(
                            "{}",
                            serde_json::json!({"word": transcription.word, "phonemes": phonemes, "log_prob": log_prob})
                        );
                    } else if beam.is_some() && n_best > 1 {
                        println!(
                            "{}\t{}\t{log_prob:.4}",
                            transcription.word,
                            phonemes.join(" ")
                        );
                    } else {
                        println!("{}\t{}", transcription.word, phonemes.join(" "));
                    }
                }
            }
        }
        Command::Serve { run, port, host } => {
            let run = Run::open(&run)?;
            if run.is_text() {
                bail!(
                    "{} is a language model; the draw-a-digit page serves MNIST runs (use `infer generate --run {}`)",
                    run.dir.display(),
                    run.dir.display()
                );
            }
            if run.sequences.is_some() {
                bail!(
                    "{} was trained on .ts sequences; the draw-a-digit page serves MNIST runs (use `infer predict --run {} FILE.ts`)",
                    run.dir.display(),
                    run.dir.display()
                );
            }
            let app = serve::App::<Inference>::load(run, device, backend::NAME)?;
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("cannot start the async runtime")?;
            runtime.block_on(async {
                let address = SocketAddr::new(host, port);
                let listener = tokio::net::TcpListener::bind(address)
                    .await
                    .with_context(|| {
                        format!(
                            "cannot listen on {address}; pass --port with a free port (0 picks one)"
                        )
                    })?;
                let local = listener
                    .local_addr()
                    .context("cannot read the bound address")?;
                let (dir, config) = (&app.run().dir, &app.run().model);
                println!(
                    "serving {} ({}, hidden {}, {} layers) on {} at http://{local}/ (Ctrl-C stops)",
                    dir.display(),
                    config.cell,
                    config.hidden_size,
                    config.num_layers,
                    backend::NAME
                );
                axum::serve(listener, app.router())
                    .with_graceful_shutdown(stop_signal())
                    .await
                    .context("the server stopped with an error")
            })?;
        }
        Command::ImportPytorch { file, out, vocab } => {
            let vocabulary = vocab.as_deref().map(data::Vocabulary::load).transpose()?;
            let config = import_pytorch::<Inference>(&file, &out, vocabulary.as_ref(), &device)?;
            println!(
                "imported {} ({}, input {}, hidden {}, {} layers{}, {} classes) into {}",
                file.display(),
                config.cell,
                config.input_size,
                config.hidden_size,
                config.num_layers,
                if config.bidirectional {
                    ", bidirectional"
                } else {
                    ""
                },
                config.num_classes,
                out.display()
            );
        }
    }
    Ok(())
}

/// Resolves on Ctrl-C (SIGINT) or SIGTERM, so that the server finishes the requests under way and exits 0.
async fn stop_signal() {
    let interrupt = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
}

fn test_set(run: &Run, data_dir: Option<PathBuf>) -> anyhow::Result<data::MnistDataset> {
    let dir = data_dir.or_else(|| run.data.dir.clone());
    let files = MnistFiles::locate(dir.as_deref())?;
    let test = files.load(Split::Test)?;
    run.batcher(test.rows(), test.cols())?;
    Ok(test)
}

/// The test set in order, normalized as the run was trained, in batches of `batch_size`.
fn test_loader(
    run: &Run,
    data_dir: Option<PathBuf>,
    batch_size: usize,
    device: &backend::Device,
) -> anyhow::Result<std::sync::Arc<dyn DataLoader<Inference, SequenceBatch<Inference>>>> {
    // The device is `Copy` on the CPU backends but not on wgpu.
    #[allow(clippy::clone_on_copy)]
    let device = device.clone();
    if let (DataSource::Ts, Some(info)) = (run.data.source, &run.sequences) {
        let dir = data_dir.or_else(|| run.data.dir.clone()).with_context(|| {
            format!(
                "{} was trained on .ts data but its config names no directory: pass --data-dir DIR",
                run.dir.display()
            )
        })?;
        let files = TsFiles::locate(&dir)?;
        let test = TsDataset::read_with(&files.test, run.data.missing)?;
        test.require_labels(&files.test)?;
        info.check(&test, &files.test)?;
        return Ok(std::sync::Arc::new(EpochLoader::new(
            std::sync::Arc::new(test),
            std::sync::Arc::new(data::TsBatcher::new(info)),
            batch_size,
            device,
        )));
    }
    let test = test_set(run, data_dir)?;
    let batcher = run.batcher(test.rows(), test.cols())?;
    Ok(std::sync::Arc::new(EpochLoader::new(
        std::sync::Arc::new(test),
        std::sync::Arc::new(batcher),
        batch_size,
        device,
    )))
}

/// One `.ts` example's prediction: the class name, then every class's probability.
fn print_sequence_prediction(name: &str, prediction: &Prediction, classes: &[String], json: bool) {
    let class = &classes[prediction.digit];
    if json {
        let probabilities: serde_json::Map<String, serde_json::Value> = classes
            .iter()
            .zip(&prediction.probabilities)
            .map(|(c, p)| (c.clone(), serde_json::json!(p)))
            .collect();
        println!(
            "{}",
            serde_json::json!({"example": name, "class": class, "probabilities": probabilities})
        );
    } else {
        let probabilities: Vec<String> = classes
            .iter()
            .zip(&prediction.probabilities)
            .map(|(c, p)| format!("{c}:{p:.3}"))
            .collect();
        println!("{name}: {class}  [{}]", probabilities.join(" "));
    }
}

fn print_prediction(name: &str, prediction: &Prediction, json: bool) {
    if json {
        println!(
            "{}",
            serde_json::json!({"image": name, "digit": prediction.digit, "probabilities": prediction.probabilities})
        );
    } else {
        let probabilities: Vec<String> = prediction
            .probabilities
            .iter()
            .enumerate()
            .map(|(class, p)| format!("{class}:{p:.3}"))
            .collect();
        println!(
            "{name}: {}  [{}]",
            prediction.digit,
            probabilities.join(" ")
        );
    }
}
