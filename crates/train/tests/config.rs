//! Configs: the shipped ones load, round-trip through JSON, and bad files are refused with a message
//! that names the file and the key.

use std::path::{Path, PathBuf};

use train::{ClippingConfig, ConfigFileError, Decay, OptimizerConfig, ScheduleConfig, TrainConfig};

fn configs_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../configs")
}

fn seed_json() -> serde_json::Value {
    let text = std::fs::read_to_string(configs_dir().join("seed.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn parse(value: &serde_json::Value) -> Result<TrainConfig, ConfigFileError> {
    TrainConfig::from_json(&value.to_string(), Path::new("test.json"))
}

#[test]
fn shipped_configs_load_and_seed_is_the_reference_program() {
    let mut shipped = 0;
    for entry in std::fs::read_dir(configs_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            let config = TrainConfig::load(&path).unwrap_or_else(|e| panic!("{e}"));
            if config.data.source == data::DataSource::Ts {
                // A `.ts` recipe leaves the sizes to the data (0 until it is read).
                assert_eq!(config.model.input_size, 0, "{}", path.display());
                assert_eq!(config.model.num_classes, 0, "{}", path.display());
            } else if matches!(
                config.data.source,
                data::DataSource::Text | data::DataSource::Pronunciations
            ) {
                // A language model's vocabulary comes from its text, a transcriber's from its
                // dictionary; both predict at every step.
                assert_eq!(config.model.vocab_size, Some(0), "{}", path.display());
                assert_eq!(config.model.num_classes, 0, "{}", path.display());
                assert_eq!(
                    config.model.head,
                    model::Head::EveryStep,
                    "{}",
                    path.display()
                );
            } else {
                // Every shipped MNIST config fits its own sequence mode.
                let (_, features) = config.data.sequence.shape(28, 28);
                assert_eq!(config.model.input_size, features, "{}", path.display());
            }
            shipped += 1;
        }
    }
    assert!(shipped >= 9, "{shipped} configs");
    let seed = TrainConfig::load(configs_dir().join("seed.json")).unwrap();
    assert_eq!(
        (
            seed.model.input_size,
            seed.model.hidden_size,
            seed.model.num_layers,
            seed.model.num_classes
        ),
        (28, 10, 2, 10)
    );
    assert_eq!((seed.batch_size, seed.num_epochs), (64, 20));
    assert_eq!(
        (seed.data.mean, seed.data.std, seed.data.validation_size),
        (0.1307, 0.3081, 0)
    );
    assert_eq!(
        seed.optimizer,
        OptimizerConfig::Sgd {
            learning_rate: 0.01,
            momentum: 0.5,
            dampening: 0.0,
            nesterov: false,
            weight_decay: 0.0
        }
    );
}

#[test]
fn saved_config_loads_back_identical() {
    let config = TrainConfig::load(configs_dir().join("fast.json")).unwrap();
    let dir = std::env::temp_dir().join(format!("train-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("config.json");
    burn::config::Config::save(&config, &path).unwrap();
    assert_eq!(TrainConfig::load(&path).unwrap(), config);
}

#[test]
fn unknown_key_is_named_with_a_suggestion() {
    let mut json = seed_json();
    let model = json["model"].as_object_mut().unwrap();
    let hidden = model.remove("hidden_size").unwrap();
    model.insert("hiden_size".into(), hidden);
    // Missing hidden_size is reported by serde first; keep it and add the typo to see the unknown-key check.
    model.insert("hidden_size".into(), 10.into());
    let err = parse(&json).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, ConfigFileError::UnknownKey { .. }), "{text}");
    assert!(
        text.contains("model.hiden_size") && text.contains("did you mean `hidden_size`"),
        "{text}"
    );
    assert!(text.contains("test.json"), "{text}");

    let mut json = seed_json();
    json["optimizer"]["Sgd"]["momentun"] = 0.5.into();
    let text = parse(&json).unwrap_err().to_string();
    assert!(
        text.contains("optimizer.Sgd.momentun") && text.contains("`momentum`"),
        "{text}"
    );

    let mut json = seed_json();
    json["epochs"] = 3.into();
    let text = parse(&json).unwrap_err().to_string();
    assert!(text.contains("unknown key `epochs`"), "{text}");
}

#[test]
fn a_misspelt_required_key_names_the_key_it_stands_for() {
    let mut json = seed_json();
    let model = json["model"].as_object_mut().unwrap();
    let hidden = model.remove("hidden_size").unwrap();
    model.insert("hiden_size".into(), hidden);
    let err = parse(&json).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, ConfigFileError::MisspeltKey { .. }), "{text}");
    assert!(
        text.contains("test.json")
            && text.contains("`model.hiden_size`")
            && text.contains("did you mean `hidden_size`"),
        "{text}"
    );

    let mut json = seed_json();
    let top = json.as_object_mut().unwrap();
    let batch = top.remove("batch_size").unwrap();
    top.insert("batch_sise".into(), batch);
    let text = parse(&json).unwrap_err().to_string();
    assert!(
        text.contains("`batch_sise`") && text.contains("`batch_size`"),
        "{text}"
    );
}

#[test]
fn configs_without_the_newer_keys_mean_todays_behaviour() {
    // seed.json predates bidirectional, dropout, clipping and schedules, and so does the committed
    // reference run's config.
    let seed = parse(&seed_json()).unwrap();
    assert_eq!(seed.gradient_clipping, None);
    assert_eq!(seed.lr_schedule, ScheduleConfig::new());
    assert!(!seed.model.bidirectional);
    assert_eq!(seed.model.dropout, 0.0);
    // A config without `model_selection` reports its last epoch's model, as every run did before.
    assert!(
        !serde_json::to_string(&seed_json())
            .unwrap()
            .contains("model_selection")
    );
    assert_eq!(seed.model_selection, train::ModelSelection::Last);
    let reference = configs_dir().join("../artifacts/reference/config.json");
    let text = std::fs::read_to_string(&reference).unwrap();
    assert!(!text.contains("lr_schedule") && !text.contains("bidirectional"));
    TrainConfig::load(&reference).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn clipping_schedules_and_layer_options_are_read_and_checked() {
    let mut json = seed_json();
    json["gradient_clipping"] = serde_json::json!({"Norm": {"max_norm": 1.0}});
    json["lr_schedule"] = serde_json::json!({
        "warmup_epochs": 1,
        "decay": {"Cosine": {"min_learning_rate": 0.0001}}
    });
    json["model"]["bidirectional"] = true.into();
    json["model"]["dropout"] = 0.25.into();
    let config = parse(&json).unwrap();
    assert_eq!(
        config.gradient_clipping,
        Some(ClippingConfig::Norm { max_norm: 1.0 })
    );
    assert_eq!(
        config.lr_schedule,
        ScheduleConfig::new()
            .with_warmup_epochs(1)
            .with_decay(Decay::Cosine {
                min_learning_rate: 0.0001
            })
    );
    assert!(config.model.bidirectional);
    assert_eq!(config.model.dropout, 0.25);
    // Written back and read again, it is the same config.
    let again = TrainConfig::from_json(&config.to_string(), Path::new("again.json")).unwrap();
    assert_eq!(again, config);

    type Mutation = fn(&mut serde_json::Value);
    let refused: [(&str, Mutation); 5] = [
        ("gradient_clipping.Norm.max_norm", |j| {
            j["gradient_clipping"] = serde_json::json!({"Norm": {"max_norm": 0.0}})
        }),
        ("gradient_clipping.Value.max_value", |j| {
            j["gradient_clipping"] = serde_json::json!({"Value": {"max_value": -1.0}})
        }),
        (
            "lr_schedule.decay.Step.gamma",
            |j| j["lr_schedule"] = serde_json::json!({"warmup_epochs": 0, "decay": {"Step": {"every_epochs": 2, "gamma": 2.0}}}),
        ),
        (
            "lr_schedule.decay.Cosine.min_learning_rate",
            |j| j["lr_schedule"] = serde_json::json!({"warmup_epochs": 0, "decay": {"Cosine": {"min_learning_rate": 1.0}}}),
        ),
        ("dropout", |j| j["model"]["dropout"] = 1.0.into()),
    ];
    for (field, mutate) in refused {
        let mut json = seed_json();
        mutate(&mut json);
        let err = parse(&json).unwrap_err();
        assert!(
            matches!(err, ConfigFileError::Value { .. }) && err.to_string().contains(field),
            "{field}: {err}"
        );
    }

    let mut json = seed_json();
    json["lr_schedule"] = serde_json::json!({"warmup_epochs": 0, "decy": "Constant"});
    let text = parse(&json).unwrap_err().to_string();
    assert!(
        text.contains("lr_schedule.decy") && text.contains("did you mean `decay`"),
        "{text}"
    );
}

#[test]
fn missing_field_wrong_type_and_bad_json_are_refused() {
    let mut json = seed_json();
    json.as_object_mut().unwrap().remove("batch_size");
    let text = parse(&json).unwrap_err().to_string();
    assert!(text.contains("missing field `batch_size`"), "{text}");

    let mut json = seed_json();
    json["model"]["hidden_size"] = "ten".into();
    let text = parse(&json).unwrap_err().to_string();
    assert!(text.contains("invalid type"), "{text}");

    let err = TrainConfig::from_json("{\"model\": {", Path::new("cut.json")).unwrap_err();
    assert!(
        matches!(err, ConfigFileError::Invalid { .. }) && err.to_string().contains("cut.json"),
        "{err}"
    );

    let mut json = seed_json();
    json["optimizer"] = serde_json::json!({"Rmsprop": {"learning_rate": 0.1}});
    let text = parse(&json).unwrap_err().to_string();
    assert!(text.contains("unknown variant `Rmsprop`"), "{text}");

    let mut json = seed_json();
    json["model"]["cell"] = "lstmm".into();
    let text = parse(&json).unwrap_err().to_string();
    assert!(
        text.contains("unknown variant `lstmm`") && text.contains("`peephole_lstm`"),
        "{text}"
    );
    let mut json = seed_json();
    json["data"]["sequence"] = "columns".into();
    let text = parse(&json).unwrap_err().to_string();
    assert!(
        text.contains("unknown variant `columns`") && text.contains("`permuted_pixels`"),
        "{text}"
    );
}

#[test]
fn senseless_values_are_refused() {
    type Mutation = fn(&mut serde_json::Value);
    let cases: [(&str, Mutation); 7] = [
        ("hidden_size", |j| j["model"]["hidden_size"] = 0.into()),
        ("num_layers", |j| j["model"]["num_layers"] = 0.into()),
        ("batch_size", |j| j["batch_size"] = 0.into()),
        ("num_epochs", |j| j["num_epochs"] = 0.into()),
        ("learning_rate", |j| {
            j["optimizer"]["Sgd"]["learning_rate"] = 0.0.into()
        }),
        ("momentum", |j| {
            j["optimizer"]["Sgd"]["momentum"] = 1.5.into()
        }),
        ("std", |j| j["data"]["std"] = (-1.0).into()),
    ];
    for (field, mutate) in cases {
        let mut json = seed_json();
        mutate(&mut json);
        let err = parse(&json).unwrap_err();
        assert!(
            matches!(err, ConfigFileError::Value { .. }),
            "{field}: {err}"
        );
        assert!(err.to_string().contains(field), "{field}: {err}");
    }
    // RMSProp's own options, and the model's identity gate.
    let rmsprop = |j: &mut serde_json::Value| {
        j["optimizer"] = serde_json::json!({"RmsProp": {
            "learning_rate": 0.001, "alpha": 0.9, "epsilon": 1e-8,
            "momentum": 0.0, "centered": false, "weight_decay": 0.0
        }});
    };
    let mut json = seed_json();
    rmsprop(&mut json);
    json["model"]["recurrent_init"] = "orthogonal".into();
    json["model"]["identity_gate"] = "g".into();
    let config = parse(&json).unwrap();
    assert_eq!(config.optimizer.learning_rate(), 0.001);
    assert_eq!(
        config.model.recurrent_init,
        model::RecurrentInit::Orthogonal
    );
    for (field, key, value) in [
        ("alpha", "alpha", 1.0),
        ("epsilon", "epsilon", 0.0),
        ("momentum", "momentum", -0.1),
    ] {
        let mut json = seed_json();
        rmsprop(&mut json);
        json["optimizer"]["RmsProp"][key] = value.into();
        let err = parse(&json).unwrap_err();
        assert!(err.to_string().contains(field), "{field}: {err}");
    }
    let mut json = seed_json();
    json["model"]["identity_gate"] = "z".into();
    let err = parse(&json).unwrap_err();
    assert!(err.to_string().contains("identity_gate"), "{err}");

    // Choosing the model on validation needs a validation split that is not the test set.
    let mut json = seed_json();
    json["model_selection"] = "best_valid_accuracy".into();
    let err = parse(&json).unwrap_err();
    assert!(
        err.to_string().contains("model_selection") && err.to_string().contains("validation_size"),
        "{err}"
    );
    json["data"]["validation_size"] = 5000.into();
    assert_eq!(
        parse(&json).unwrap().model_selection,
        train::ModelSelection::BestValidAccuracy
    );
    json["model_selection"] = "best".into();
    let err = parse(&json).unwrap_err();
    assert!(err.to_string().contains("best_valid_loss"), "{err}");

    let err = TrainConfig::load("/no/such/config.json").unwrap_err();
    assert!(
        matches!(err, ConfigFileError::Read { .. })
            && err.to_string().contains("/no/such/config.json")
    );
}

/// A run's saved config holds what its data source reads, and loads back to the same config: a `.ts`
/// run's has no image normalization, a language model's no split fields, none the other sources'
/// sections; every shipped config goes through it unchanged.
#[test]
fn a_runs_saved_config_holds_only_what_its_source_reads() {
    for entry in std::fs::read_dir(configs_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let config = TrainConfig::load(&path).unwrap();
        let written = config.to_run_json();
        let again = TrainConfig::from_json(&written, Path::new("config.json")).unwrap();
        assert_eq!(again, config, "{}", path.display());
        let data = &serde_json::from_str::<serde_json::Value>(&written).unwrap()["data"];
        let has = |key: &str| data.get(key).is_some();
        match config.data.source {
            data::DataSource::Mnist => {
                assert!(has("mean") && has("sequence") && !has("missing"), "{data}")
            }
            data::DataSource::Ts => assert!(
                !has("mean") && !has("std") && !has("sequence") && !has("permutation_seed"),
                "{}: {data}",
                path.display()
            ),
            data::DataSource::Text | data::DataSource::Pronunciations => assert!(
                !has("mean") && !has("validation_size") && !has("missing"),
                "{}: {data}",
                path.display()
            ),
        }
        assert_eq!(has("text"), config.data.text.is_some());
        assert_eq!(has("pronunciations"), config.data.pronunciations.is_some());
    }
    // configs/sequences.json itself carries none of MNIST's fields.
    let text = std::fs::read_to_string(configs_dir().join("sequences.json")).unwrap();
    for key in [
        "\"mean\"",
        "\"std\"",
        "\"sequence\"",
        "\"permutation_seed\"",
    ] {
        assert!(!text.contains(key), "configs/sequences.json sets {key}");
    }
}

/// `data.validation_fraction` (a share of a `.ts` training set) and `min_steps` are read and checked.
#[test]
fn a_validation_share_and_a_step_floor_are_read_and_checked() {
    let config = TrainConfig::load(configs_dir().join("sequences.json")).unwrap();
    assert_eq!(config.data.validation_fraction, Some(0.2));
    assert_eq!(config.min_steps, Some(600));
    assert_eq!(config.data.held_out(40), 8);
    assert_eq!(config.data.held_out(2400), 480);
    // Always at least one example on each side.
    assert_eq!(config.data.held_out(2), 1);
    assert!(config.data.holds_out_validation());

    let text = std::fs::read_to_string(configs_dir().join("sequences.json")).unwrap();
    let base: serde_json::Value = serde_json::from_str(&text).unwrap();
    type Mutation = fn(&mut serde_json::Value);
    let refused: [(&str, Mutation); 4] = [
        ("strictly between 0 and 1", |j| {
            j["data"]["validation_fraction"] = 1.0.into()
        }),
        ("not both", |j| j["data"]["validation_size"] = 40.into()),
        ("only data.source \"ts\"", |j| {
            j["data"]["source"] = "mnist".into();
            j["model"]["input_size"] = 28.into();
            j["model"]["num_classes"] = 10.into();
            for (key, value) in [("mean", 0.1307), ("std", 0.3081)] {
                j["data"][key] = value.into();
            }
            j["data"]["sequence"] = "rows".into();
            j["data"]["permutation_seed"] = 0.into();
            j["data"]["validation_size"] = 0.into();
            j["data"]["train_limit"] = serde_json::Value::Null;
            j["data"]["eval_limit"] = serde_json::Value::Null;
        }),
        ("min_steps", |j| j["min_steps"] = 0.into()),
    ];
    for (needle, mutate) in refused {
        let mut json = base.clone();
        mutate(&mut json);
        let message = match parse(&json) {
            Ok(config) => config
                .validate()
                .expect_err(&format!("accepted: {json}"))
                .to_string(),
            Err(e) => e.to_string(),
        };
        assert!(message.contains(needle), "{needle}: {message}");
    }
}
