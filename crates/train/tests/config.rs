//! Configs: the shipped ones load, round-trip through JSON, and bad files are refused with a message
//! that names the file and the key.

use std::path::{Path, PathBuf};

use train::{ConfigFileError, OptimizerConfig, TrainConfig};

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
            // Every shipped config fits its own sequence mode.
            let (_, features) = config.data.sequence.shape(28, 28);
            assert_eq!(config.model.input_size, features, "{}", path.display());
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
    let err = TrainConfig::load("/no/such/config.json").unwrap_err();
    assert!(
        matches!(err, ConfigFileError::Read { .. })
            && err.to_string().contains("/no/such/config.json")
    );
}
