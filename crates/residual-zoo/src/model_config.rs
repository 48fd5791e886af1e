//! [`ModelConfig`]: any family's config as one value, the form runs,
//! checkpoints and config files store.
//!
//! In JSON and TOML a config is its family's fields plus `family`:
//!
//! ```toml
//! family = "resnet"
//! block = "basic"
//! layers = [2, 2]
//! widths = [16, 32]
//! stem = "cifar"
//! stem_width = 16
//! num_classes = 10
//! ```

use crate::config::ResNetConfig;
use crate::hybrid_config::HybridConfig;
use residual_tensor::{Error, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A model of any family, as data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "family", rename_all = "snake_case")]
pub enum ModelConfig {
    /// torchvision's ResNets, the CIFAR ResNets and their plain twins.
    Resnet(ResNetConfig),
    /// ResNet-stem Vision Transformers (timm's hybrids and custom ones).
    Hybrid(HybridConfig),
}

/// Settings a caller applies to a registered model's config: the input
/// channels and classes every family has, and family settings by name
/// (`norm`, `act`, `zero_init_residual` for the ResNets).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ModelOptions {
    /// Output classes (the model's default when `None`).
    pub num_classes: Option<usize>,
    /// Input channels (the model's default when `None`).
    pub in_channels: Option<usize>,
    /// `(setting, value)` pairs, applied in order, as the config's JSON field
    /// names and values (`("norm", "group")`).
    pub settings: Vec<(String, Value)>,
}

impl ModelOptions {
    /// Options with `n` classes.
    pub fn classes(n: usize) -> Self {
        ModelOptions {
            num_classes: Some(n),
            ..Default::default()
        }
    }
    /// Adds a family setting.
    pub fn set(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.settings.push((key.to_string(), value.into()));
        self
    }
}

impl ModelConfig {
    /// The family's name (`resnet`), as in the `family` field.
    pub fn family(&self) -> &'static str {
        match self {
            ModelConfig::Resnet(_) => "resnet",
            ModelConfig::Hybrid(_) => "hybrid",
        }
    }

    /// Output classes.
    pub fn num_classes(&self) -> usize {
        match self {
            ModelConfig::Resnet(c) => c.num_classes,
            ModelConfig::Hybrid(c) => c.num_classes,
        }
    }

    /// Input channels.
    pub fn in_channels(&self) -> usize {
        match self {
            ModelConfig::Resnet(c) => c.in_channels,
            ModelConfig::Hybrid(c) => c.in_channels,
        }
    }

    /// Checks that the numbers fit together.
    pub fn validate(&self) -> Result<()> {
        match self {
            ModelConfig::Resnet(c) => c.validate(),
            ModelConfig::Hybrid(c) => c.validate(),
        }
    }

    /// Applies `opts`: the settings in order, then the channels and classes.
    pub fn apply(&mut self, opts: &ModelOptions) -> Result<()> {
        for (key, value) in &opts.settings {
            self.set(key, value.clone())?;
        }
        match self {
            ModelConfig::Resnet(c) => {
                c.num_classes = opts.num_classes.unwrap_or(c.num_classes);
                c.in_channels = opts.in_channels.unwrap_or(c.in_channels);
            }
            ModelConfig::Hybrid(c) => {
                c.num_classes = opts.num_classes.unwrap_or(c.num_classes);
                if let Some(n) = opts.in_channels {
                    c.in_channels = n;
                    if let crate::hybrid_config::BackboneConfig::Resnet { resnet, .. } =
                        &mut c.backbone
                    {
                        resnet.in_channels = n;
                    }
                }
            }
        }
        self.validate()
    }

    /// Sets the family setting `key` (a JSON field name) to `value`; an
    /// error names the settings the family has, or what the value should be.
    pub fn set(&mut self, key: &str, value: Value) -> Result<()> {
        let family = self.family();
        let mut fields = match serde_json::to_value(&*self) {
            Ok(Value::Object(m)) => m,
            _ => unreachable!("a config serialises to a JSON object"),
        };
        if key == "family" || !fields.contains_key(key) {
            let mut known: Vec<&str> = fields
                .keys()
                .map(String::as_str)
                .filter(|k| *k != "family")
                .collect();
            known.sort_unstable();
            return Err(Error::arg(
                "model config",
                format!(
                    "the {family} family has no setting {key:?}; its settings: {}",
                    known.join(", ")
                ),
            ));
        }
        let shown = value.to_string();
        fields.insert(key.to_string(), value);
        *self = serde_json::from_value(Value::Object(fields)).map_err(|e| {
            Error::arg(
                "model config",
                format!("{family} setting {key} = {shown}: {e}"),
            )
        })?;
        Ok(())
    }

    /// Reads a config from JSON text (with its `family` field).
    pub fn from_json(text: &str) -> Result<Self> {
        let c: Self = serde_json::from_str(text)
            .map_err(|e| Error::arg("model config", format!("invalid JSON config: {e}")))?;
        c.validate()?;
        Ok(c)
    }

    /// Reads a config from TOML text (with its `family` field).
    pub fn from_toml(text: &str) -> Result<Self> {
        let c: Self = toml::from_str(text)
            .map_err(|e| Error::arg("model config", format!("invalid TOML config: {e}")))?;
        c.validate()?;
        Ok(c)
    }
}
