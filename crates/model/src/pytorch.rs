//! PyTorch state_dicts in safetensors (or `torch.save`) files: import into a [`RecurrentClassifier`],
//! and export back.
//!
//! Names and packing follow `nn.LSTM` / `nn.GRU` / `nn.RNN` + `nn.Linear`: `<prefix>.weight_ih_l{k}`
//! `[G·H, in]`, `<prefix>.weight_hh_l{k}` `[G·H, H]`, `<prefix>.bias_ih_l{k}` / `<prefix>.bias_hh_l{k}`
//! `[G·H]` (G = 4 gates i, f, g, o for the LSTMs; 3 gates r, z, n for the GRU; 1 for the tanh RNN), the
//! peephole LSTM's `<prefix>.weight_c{i,f,o}_l{k}` `[H]`, then `fc.weight` `[C, H]` and `fc.bias` `[C]`.
//! A bidirectional stack (`bidirectional=True`) adds each layer's reverse direction as
//! `<prefix>.*_l{k}_reverse`; layer k+1 then reads 2H features and `fc.weight` is `[C, 2H]`, applied
//! to `cat(h_n[-2], h_n[-1])`.
//! A language model as PyTorch's `word_language_model` example saves it adds the token embedding
//! `encoder.weight` `[V, E]` and names its head `decoder` (`[V, H]`, `[V]`): it imports as a model
//! that reads token ids and predicts at every step.
//! The prefix is whatever precedes `.weight_ih_l0` (`lstm` or `rnn`). The cell comes from the file's
//! `cell` metadata when present, else from the gate count; sizes are read from the tensors, never assumed.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use burn::module::Param;
use burn::nn::{Embedding, Linear};
use burn::tensor::{Int, Tensor, TensorData, backend::Backend};
use safetensors::{Dtype, SafeTensors};

use crate::layer::LayerParams;
use crate::{Cell, ConfigError, ModelConfig, RecurrentClassifier, RecurrentLayer, RecurrentStack};

/// Why a state_dict could not be read or turned into a model. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The file could not be read at all.
    #[error("cannot read {path}: {cause}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        cause: std::io::Error,
    },
    /// The file could not be written (a missing directory, no permission, a full disk).
    #[error("cannot write {path}: {cause}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        cause: std::io::Error,
    },
    /// The bytes are not a valid safetensors (or, for `.pt`/`.pth`, PyTorch pickle) file.
    #[error(
        "{path} cannot be read as a PyTorch state_dict ({message}); save one with safetensors.torch.save_file(model.state_dict(), path) or torch.save(model.state_dict(), path)"
    )]
    Format {
        /// The file.
        path: PathBuf,
        /// The parser's complaint.
        message: String,
    },
    /// A tensor the architecture needs is absent.
    #[error("{path} has no tensor `{name}`, which a {what} needs; present tensors: {present}")]
    MissingTensor {
        /// The file.
        path: PathBuf,
        /// The missing tensor's name.
        name: String,
        /// What needs it.
        what: &'static str,
        /// The names that are there, to spot a renamed prefix.
        present: String,
    },
    /// A tensor has a shape that does not fit the sizes read from the others.
    #[error("{path}: tensor `{name}` has shape {found:?}, expected {expected} ({why})")]
    Shape {
        /// The file.
        path: PathBuf,
        /// The tensor.
        name: String,
        /// The shape it should have.
        expected: String,
        /// The shape it has.
        found: Vec<usize>,
        /// Where the expectation comes from.
        why: String,
    },
    /// A tensor holds a value outside the range it must lie in.
    #[error("{path}: tensor `{name}` {problem}")]
    Value {
        /// The file.
        path: PathBuf,
        /// The tensor.
        name: String,
        /// Which value is wrong and what it should be.
        problem: String,
    },
    /// A tensor's element type cannot be used.
    #[error("{path}: tensor `{name}` is {dtype}, expected {expected}; convert it before saving")]
    Dtype {
        /// The file.
        path: PathBuf,
        /// The tensor.
        name: String,
        /// Its element type.
        dtype: String,
        /// What would be accepted.
        expected: &'static str,
    },
    /// No recurrent weights were found at all.
    #[error(
        "{path} holds no recurrent layer: no tensor named `<prefix>.weight_ih_l0`; present tensors: {present}"
    )]
    NoRecurrent {
        /// The file.
        path: PathBuf,
        /// The names that are there.
        present: String,
    },
    /// A metadata entry is missing or unreadable.
    #[error("{path}: metadata `{key}` {problem}")]
    Metadata {
        /// The file.
        path: PathBuf,
        /// The metadata key.
        key: String,
        /// What is wrong with it.
        problem: String,
    },
    /// The sizes read from the tensors do not make a valid model.
    #[error("{path}: {cause}")]
    Config {
        /// The file.
        path: PathBuf,
        /// The invalid size.
        cause: ConfigError,
    },
    /// The safetensors encoder refused to write.
    #[error("cannot encode safetensors for {path}: {message}")]
    Encode {
        /// The destination.
        path: PathBuf,
        /// The encoder's complaint.
        message: String,
    },
}

/// One tensor held on the host, in PyTorch layout.
#[derive(Debug, Clone, PartialEq)]
pub enum HostTensor {
    /// Floating-point values (f32, or f64/f16/bf16 converted to f32).
    Float {
        /// Dimensions, outermost first.
        shape: Vec<usize>,
        /// Row-major values.
        values: Vec<f32>,
    },
    /// Integer values (any integer width, widened to i64).
    Int {
        /// Dimensions, outermost first.
        shape: Vec<usize>,
        /// Row-major values.
        values: Vec<i64>,
    },
}

impl HostTensor {
    /// The tensor's dimensions.
    pub fn shape(&self) -> &[usize] {
        match self {
            HostTensor::Float { shape, .. } | HostTensor::Int { shape, .. } => shape,
        }
    }
}

/// A state_dict: named tensors plus the file's string metadata, as PyTorch's safetensors writer stores them.
#[derive(Debug, Clone, Default)]
pub struct StateDict {
    /// Where it came from (or goes to), for error messages.
    pub source: PathBuf,
    /// Tensors by name.
    pub tensors: BTreeMap<String, HostTensor>,
    /// The file's `__metadata__` map.
    pub metadata: HashMap<String, String>,
}

impl StateDict {
    /// Every float value, tensor after tensor in name order: what two models are compared by.
    pub fn float_values(&self) -> Vec<f32> {
        self.tensors
            .values()
            .flat_map(|tensor| match tensor {
                HostTensor::Float { values, .. } => values.as_slice(),
                HostTensor::Int { .. } => &[],
            })
            .copied()
            .collect()
    }

    /// Reads a `.safetensors` file.
    pub fn read(path: impl AsRef<Path>) -> Result<Self, ImportError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|cause| ImportError::Read {
            path: path.to_path_buf(),
            cause,
        })?;
        Self::from_bytes(&bytes, path)
    }

    /// Reads a state_dict saved with `torch.save(model.state_dict(), path)` (`.pt`/`.pth`), without Python.
    pub fn read_pytorch(path: impl AsRef<Path>) -> Result<Self, ImportError> {
        let path = path.as_ref();
        let format = |message: String| ImportError::Format {
            path: path.to_path_buf(),
            message,
        };
        let reader =
            burn_store::pytorch::PytorchReader::new(path).map_err(|e| format(e.to_string()))?;
        let mut tensors = BTreeMap::new();
        for (name, snapshot) in reader.into_tensors() {
            let data = snapshot
                .to_data()
                .map_err(|e| format(format!("tensor `{name}`: {e}")))?;
            let shape = data.shape.to_vec();
            let tensor = if data.dtype.is_float() {
                HostTensor::Float {
                    shape,
                    values: data
                        .convert::<f32>()
                        .to_vec()
                        .map_err(|e| format(format!("tensor `{name}`: {e:?}")))?,
                }
            } else {
                HostTensor::Int {
                    shape,
                    values: data
                        .convert::<i64>()
                        .to_vec()
                        .map_err(|e| format(format!("tensor `{name}`: {e:?}")))?,
                }
            };
            tensors.insert(name, tensor);
        }
        Ok(Self {
            source: path.to_path_buf(),
            tensors,
            metadata: HashMap::new(),
        })
    }

    /// Reads either format, by extension: `.pt`/`.pth`/`.bin` through PyTorch's pickle format, anything
    /// else as safetensors.
    pub fn read_any(path: impl AsRef<Path>) -> Result<Self, ImportError> {
        let path = path.as_ref();
        match path.extension().and_then(|e| e.to_str()) {
            Some("pt" | "pth" | "bin") => Self::read_pytorch(path),
            _ => Self::read(path),
        }
    }

    /// Parses safetensors bytes; `source` only names them in errors.
    pub fn from_bytes(bytes: &[u8], source: impl AsRef<Path>) -> Result<Self, ImportError> {
        let source = source.as_ref().to_path_buf();
        let format = |e: safetensors::SafeTensorError| ImportError::Format {
            path: source.clone(),
            message: e.to_string(),
        };
        let (_, header) = SafeTensors::read_metadata(bytes).map_err(format)?;
        let metadata = header.metadata().clone().unwrap_or_default();
        let file = SafeTensors::deserialize(bytes).map_err(format)?;
        let mut tensors = BTreeMap::new();
        for (name, view) in file.tensors() {
            let shape = view.shape().to_vec();
            let data = view.data();
            let tensor = match view.dtype() {
                Dtype::F32 => HostTensor::Float {
                    shape,
                    values: le_values(data, f32::from_le_bytes),
                },
                Dtype::F64 => HostTensor::Float {
                    shape,
                    values: le_values(data, f64::from_le_bytes)
                        .into_iter()
                        .map(|v| v as f32)
                        .collect(),
                },
                Dtype::I64 => HostTensor::Int {
                    shape,
                    values: le_values(data, i64::from_le_bytes),
                },
                Dtype::I32 => HostTensor::Int {
                    shape,
                    values: le_values(data, i32::from_le_bytes)
                        .into_iter()
                        .map(i64::from)
                        .collect(),
                },
                other => {
                    return Err(ImportError::Dtype {
                        path: source,
                        name,
                        dtype: format!("{other:?}"),
                        expected: "F32, F64, I32 or I64",
                    });
                }
            };
            tensors.insert(name, tensor);
        }
        Ok(Self {
            source,
            tensors,
            metadata,
        })
    }

    /// Encodes as safetensors bytes (floats as F32, integers as I64), metadata included.
    pub fn to_bytes(&self) -> Result<Vec<u8>, ImportError> {
        let encoded: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = self
            .tensors
            .iter()
            .map(|(name, tensor)| match tensor {
                HostTensor::Float { shape, values } => (
                    name.clone(),
                    Dtype::F32,
                    shape.clone(),
                    values.iter().flat_map(|v| v.to_le_bytes()).collect(),
                ),
                HostTensor::Int { shape, values } => (
                    name.clone(),
                    Dtype::I64,
                    shape.clone(),
                    values.iter().flat_map(|v| v.to_le_bytes()).collect(),
                ),
            })
            .collect();
        let encode = |e: safetensors::SafeTensorError| ImportError::Encode {
            path: self.source.clone(),
            message: e.to_string(),
        };
        let views = encoded
            .iter()
            .map(|(name, dtype, shape, bytes)| {
                safetensors::tensor::TensorView::new(*dtype, shape.clone(), bytes)
                    .map(|view| (name.clone(), view))
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(encode)?;
        let metadata = (!self.metadata.is_empty()).then(|| self.metadata.clone());
        safetensors::serialize(views, metadata).map_err(encode)
    }

    /// Writes the state_dict as a `.safetensors` file.
    pub fn write(&self, path: impl AsRef<Path>) -> Result<(), ImportError> {
        let path = path.as_ref();
        let bytes = self.to_bytes()?;
        std::fs::write(path, bytes).map_err(|cause| ImportError::Write {
            path: path.to_path_buf(),
            cause,
        })
    }

    /// A tensor by name; `what` says what needs it, for the error message.
    pub fn get(&self, name: &str, what: &'static str) -> Result<&HostTensor, ImportError> {
        self.tensors
            .get(name)
            .ok_or_else(|| ImportError::MissingTensor {
                path: self.source.clone(),
                name: name.to_string(),
                what,
                present: self.names(),
            })
    }

    /// A float tensor by name, checked against `expected` dimensions.
    pub fn float(
        &self,
        name: &str,
        expected: &[usize],
        why: &str,
    ) -> Result<(&[usize], &[f32]), ImportError> {
        match self.get(name, "model of this architecture")? {
            HostTensor::Float { shape, values } if shape.as_slice() == expected => {
                Ok((shape, values))
            }
            HostTensor::Float { shape, .. } => Err(self.shape_error(name, expected, shape, why)),
            HostTensor::Int { .. } => Err(ImportError::Dtype {
                path: self.source.clone(),
                name: name.to_string(),
                dtype: "an integer tensor".into(),
                expected: "a float tensor",
            }),
        }
    }

    /// A float tensor as a Burn tensor on `device`, checked against `expected` dimensions.
    pub fn float_tensor<B: Backend, const D: usize>(
        &self,
        name: &str,
        expected: [usize; D],
        why: &str,
        device: &B::Device,
    ) -> Result<Tensor<B, D>, ImportError> {
        let (_, values) = self.float(name, &expected, why)?;
        Ok(Tensor::from_data(
            TensorData::new(values.to_vec(), expected),
            device,
        ))
    }

    /// An integer tensor of rank 1 as a Burn `Int` tensor (class targets, for instance).
    pub fn int_tensor<B: Backend>(
        &self,
        name: &str,
        device: &B::Device,
    ) -> Result<Tensor<B, 1, Int>, ImportError> {
        match self.get(name, "parity check")? {
            HostTensor::Int { shape, values } if shape.len() == 1 => Ok(Tensor::from_data(
                TensorData::new(values.clone(), [values.len()]),
                device,
            )),
            other => Err(ImportError::Shape {
                path: self.source.clone(),
                name: name.to_string(),
                expected: "[N] integers".into(),
                found: other.shape().to_vec(),
                why: "one class index per input".into(),
            }),
        }
    }

    /// A metadata value parsed as a number.
    pub fn metadata_f64(&self, key: &str) -> Result<f64, ImportError> {
        let problem = |problem: String| ImportError::Metadata {
            path: self.source.clone(),
            key: key.to_string(),
            problem,
        };
        let text = self
            .metadata
            .get(key)
            .ok_or_else(|| problem("is missing".into()))?;
        text.trim()
            .parse()
            .map_err(|_| problem(format!("is `{text}`, not a number")))
    }

    /// The name prefix of the recurrent stack (`lstm` in `lstm.weight_ih_l0`).
    pub fn recurrent_prefix(&self) -> Result<&str, ImportError> {
        // The least nested one: a file may also hold, say, `grad.rnn.weight_ih_l0`.
        self.tensors
            .keys()
            .filter_map(|name| name.strip_suffix(".weight_ih_l0"))
            .min_by_key(|prefix| (prefix.matches('.').count(), *prefix))
            .ok_or_else(|| ImportError::NoRecurrent {
                path: self.source.clone(),
                present: self.names(),
            })
    }

    /// The cell and sizes implied by the metadata and the tensors' shapes (layers counted from
    /// `weight_ih_l{k}`).
    pub fn model_config(&self) -> Result<ModelConfig, ImportError> {
        let prefix = self.recurrent_prefix()?;
        let ih_name = format!("{prefix}.weight_ih_l0");
        let first = self.get(&ih_name, "recurrent layer")?.shape();
        let hh = self
            .get(&format!("{prefix}.weight_hh_l0"), "recurrent layer")?
            .shape();
        let head = self.head_prefix();
        let fc = self
            .get(
                &format!("{head}.weight"),
                "the head (fc, or decoder for a language model)",
            )?
            .shape();
        let (&[rows, input_size], &[_, hidden_size], &[num_classes, _]) = (first, hh, fc) else {
            return Err(self.shape_error(
                &ih_name,
                &[0, 0],
                first,
                "recurrent and fc weights are 2-D",
            ));
        };
        let gates = rows.checked_div(hidden_size).unwrap_or(0);
        let cell = self.cell(prefix, gates)?;
        if rows != cell.gates() * hidden_size {
            return Err(self.shape_error(
                &ih_name,
                &[cell.gates() * hidden_size, input_size],
                first,
                &format!(
                    "a {cell} layer packs {} gates of hidden_size rows, hidden_size read from weight_hh_l0",
                    cell.gates()
                ),
            ));
        }
        let num_layers = (0..)
            .take_while(|k| {
                self.tensors
                    .contains_key(&format!("{prefix}.weight_ih_l{k}"))
            })
            .count();
        let config = ModelConfig {
            cell,
            input_size,
            hidden_size,
            num_layers,
            num_classes,
            bias: self.tensors.contains_key(&format!("{prefix}.bias_ih_l0")),
            bidirectional: self
                .tensors
                .contains_key(&format!("{prefix}.weight_ih_l0_reverse")),
            dropout: 0.0,
            forget_bias: 0.0,
            recurrent_init: crate::RecurrentInit::Pytorch,
            identity_gate: None,
            vocab_size: None,
            head: crate::Head::FinalState,
            input_dropout: 0.0,
            output_dropout: 0.0,
        };
        // A token embedding (word_language_model's `encoder`): a language model.
        let config = match self.tensors.get(EMBEDDING) {
            None => config,
            Some(embedding) => {
                let &[vocab, width] = embedding.shape() else {
                    return Err(self.shape_error(
                        EMBEDDING,
                        &[0, input_size],
                        embedding.shape(),
                        "an embedding is 2-D",
                    ));
                };
                if width != input_size {
                    return Err(self.shape_error(
                        EMBEDDING,
                        &[vocab, input_size],
                        embedding.shape(),
                        "each token's vector is what the first recurrent layer reads",
                    ));
                }
                ModelConfig {
                    vocab_size: Some(vocab),
                    head: crate::Head::EveryStep,
                    ..config
                }
            }
        };
        config.validate().map_err(|cause| ImportError::Config {
            path: self.source.clone(),
            cause,
        })?;
        Ok(config)
    }

    /// The cell: the `cell` metadata when present, else guessed from the gate count (and the
    /// presence of peephole weights).
    fn cell(&self, prefix: &str, gates: usize) -> Result<Cell, ImportError> {
        if let Some(name) = self.metadata.get("cell") {
            return Cell::from_name(name).ok_or_else(|| ImportError::Metadata {
                path: self.source.clone(),
                key: "cell".into(),
                problem: format!(
                    "is `{name}`, not one of lstm, peephole_lstm (or peephole), gru, rnn"
                ),
            });
        }
        let peephole = self.tensors.contains_key(&format!("{prefix}.weight_ci_l0"));
        match (gates, peephole) {
            (4, true) => Ok(Cell::PeepholeLstm),
            (4, false) => Ok(Cell::Lstm),
            (3, _) => Ok(Cell::Gru),
            (1, _) => Ok(Cell::Rnn),
            _ => Err(ImportError::Metadata {
                path: self.source.clone(),
                key: "cell".into(),
                problem: format!(
                    "is missing, and {gates} gates per hidden unit in {prefix}.weight_ih_l0 fit no cell (4: LSTM, 3: GRU, 1: RNN)"
                ),
            }),
        }
    }

    /// Builds the classifier these weights describe, checking every tensor's shape.
    pub fn to_classifier<B: Backend>(
        &self,
        device: &B::Device,
    ) -> Result<RecurrentClassifier<B>, ImportError> {
        let config = self.model_config()?;
        let prefix = self.recurrent_prefix()?;
        let cell = config.cell;
        let (h, g) = (config.hidden_size, cell.gates() * config.hidden_size);
        let stack = config.stack_shape();
        let directions = stack.directions();
        let layers = (0..config.num_layers * directions)
            .map(|index| {
                let (k, suffix) = (index / directions, DIRECTION_SUFFIXES[index % directions]);
                let input = stack.level_input(k);
                let why = format!("layer {k}{suffix} of a {cell} stack with hidden size {h}");
                let name = |kind: &str| format!("{prefix}.{kind}_l{k}{suffix}");
                let weight = |kind: &str, cols: usize| {
                    self.float_tensor::<B, 2>(&name(kind), [g, cols], &why, device)
                        .map(|w| Param::from_tensor(w.transpose()))
                };
                let vector = |kind: &str, len: usize| {
                    self.float_tensor::<B, 1>(&name(kind), [len], &why, device)
                        .map(Param::from_tensor)
                };
                let bias = |kind: &str| config.bias.then(|| vector(kind, g)).transpose();
                let peepholes = (cell == Cell::PeepholeLstm)
                    .then(|| {
                        Ok::<_, ImportError>([
                            vector("weight_ci", h)?,
                            vector("weight_cf", h)?,
                            vector("weight_co", h)?,
                        ])
                    })
                    .transpose()?;
                let params = LayerParams {
                    weight_ih: weight("weight_ih", input)?,
                    weight_hh: weight("weight_hh", h)?,
                    bias_ih: bias("bias_ih")?,
                    bias_hh: bias("bias_hh")?,
                    peepholes,
                };
                Ok(RecurrentLayer::from_params(cell, params))
            })
            .collect::<Result<Vec<_>, ImportError>>()?;
        let why = format!(
            "head from {directions} direction(s) of hidden size {h} to {} classes",
            config.num_classes
        );
        let head = self.head_prefix();
        let fc_weight = self.float_tensor::<B, 2>(
            &format!("{head}.weight"),
            [config.num_classes, directions * h],
            &why,
            device,
        )?;
        let fc_bias =
            self.float_tensor::<B, 1>(&format!("{head}.bias"), [config.num_classes], &why, device)?;
        let embedding = config
            .vocab_size
            .map(|vocab| {
                self.float_tensor::<B, 2>(
                    EMBEDDING,
                    [vocab, config.input_size],
                    "the token embedding",
                    device,
                )
                .map(|weight| Embedding {
                    weight: Param::from_tensor(weight),
                })
            })
            .transpose()?;
        Ok(RecurrentClassifier::from_parts(
            embedding,
            RecurrentStack::from_layers(layers, directions, 0.0),
            Linear {
                weight: Param::from_tensor(fc_weight.transpose()),
                bias: Some(Param::from_tensor(fc_bias)),
            },
            &config,
        ))
    }

    /// The head's name prefix: `decoder` (PyTorch's word_language_model) when the file has
    /// `decoder.weight`, else `fc`.
    fn head_prefix(&self) -> &'static str {
        if self.tensors.contains_key("decoder.weight") {
            "decoder"
        } else {
            "fc"
        }
    }

    /// The state_dict PyTorch would hold for `model`, ready to [`write`](Self::write): a classifier's
    /// with prefix `lstm` for the LSTM cells, `rnn` for the GRU and the tanh RNN, and head `fc`, as in
    /// the PyTorch fixtures; a model with a token embedding as PyTorch's word_language_model names
    /// it (`encoder`, `rnn`, `decoder`).
    pub fn from_classifier<B: Backend>(model: &RecurrentClassifier<B>) -> Self {
        let config = model.config();
        let language_model = model.embedding.is_some();
        let prefix = if config.cell.has_cell_state() && !language_model {
            "lstm"
        } else {
            "rnn"
        };
        let head = if language_model { "decoder" } else { "fc" };
        let mut tensors = BTreeMap::new();
        let mut put = |name: String, tensor: Option<HostTensor>| {
            if let Some(tensor) = tensor {
                tensors.insert(name, tensor);
            }
        };
        let directions = model.rnn.directions();
        for (index, layer) in model.rnn.layers.iter().enumerate() {
            let (k, suffix) = (index / directions, DIRECTION_SUFFIXES[index % directions]);
            put(
                format!("{prefix}.weight_ih_l{k}{suffix}"),
                Some(host(layer.weight_ih.val().transpose())),
            );
            put(
                format!("{prefix}.weight_hh_l{k}{suffix}"),
                Some(host(layer.weight_hh.val().transpose())),
            );
            let vectors = [
                ("bias_ih", &layer.bias_ih),
                ("bias_hh", &layer.bias_hh),
                ("weight_ci", &layer.weight_ci),
                ("weight_cf", &layer.weight_cf),
                ("weight_co", &layer.weight_co),
            ];
            for (name, param) in vectors {
                put(
                    format!("{prefix}.{name}_l{k}{suffix}"),
                    param.as_ref().map(|p| host(p.val())),
                );
            }
        }
        put(
            format!("{head}.weight"),
            Some(host(model.fc.weight.val().transpose())),
        );
        put(
            format!("{head}.bias"),
            model.fc.bias.as_ref().map(|b| host(b.val())),
        );
        put(
            EMBEDDING.into(),
            model.embedding.as_ref().map(|e| host(e.weight.val())),
        );
        let metadata = [
            ("cell", config.cell.name().to_string()),
            ("input_size", config.input_size.to_string()),
            ("hidden_size", config.hidden_size.to_string()),
            ("num_layers", config.num_layers.to_string()),
            ("num_classes", config.num_classes.to_string()),
            ("bidirectional", config.bidirectional.to_string()),
            ("gate_order", config.cell.gate_order().to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        Self {
            source: PathBuf::from("<exported model>"),
            tensors,
            metadata,
        }
    }

    fn names(&self) -> String {
        let names: Vec<&str> = self.tensors.keys().map(String::as_str).collect();
        if names.is_empty() {
            "none".into()
        } else {
            names.join(", ")
        }
    }

    fn shape_error(
        &self,
        name: &str,
        expected: &[usize],
        found: &[usize],
        why: &str,
    ) -> ImportError {
        ImportError::Shape {
            path: self.source.clone(),
            name: name.to_string(),
            expected: format!("{expected:?}"),
            found: found.to_vec(),
            why: why.to_string(),
        }
    }
}

/// The token embedding's name in PyTorch's word_language_model.
const EMBEDDING: &str = "encoder.weight";

/// The name suffix of each direction's tensors: PyTorch's `weight_ih_l0` and `weight_ih_l0_reverse`.
const DIRECTION_SUFFIXES: [&str; 2] = ["", "_reverse"];

/// Copies a Burn float tensor to the host.
fn host<B: Backend, const D: usize>(tensor: Tensor<B, D>) -> HostTensor {
    let shape = tensor.dims().to_vec();
    let values = tensor
        .into_data()
        .convert::<f32>()
        .to_vec()
        .expect("converted to f32 just above");
    HostTensor::Float { shape, values }
}

/// Decodes little-endian fixed-size values; safetensors has already checked the length.
fn le_values<T, const N: usize>(bytes: &[u8], decode: fn([u8; N]) -> T) -> Vec<T> {
    bytes
        .chunks_exact(N)
        .map(|chunk| decode(chunk.try_into().expect("chunks_exact yields N bytes")))
        .collect()
}
